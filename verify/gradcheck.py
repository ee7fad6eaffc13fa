"""Gradient check along one random direction against central finite differences (as JAX's check_vjp).

For a loss f, a point x (a dict of arrays) and a claimed gradient g, draw a unit direction v and
compare <g, v> with (f(x + h v) - f(x - h v)) / 2h. In float64 with h = 1e-5 the difference has
rounding error about eps * |f| / h (2e-11 |f|) and truncation error h^2 |f'''| / 6 (1e-11 |f'''|);
the allowance, atol 1e-8 * (1 + |f|) and rtol 1e-6, is far above both and far below the O(1)
relative error of a wrong backward pass.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from verify.compare import compare_tensor
from verify.report import Allowance, Check

STEP = 1e-5
RULE = "finite differences: central difference, h = 1e-5 along a unit direction, float64"


def directional_check(f: Callable[[dict[str, np.ndarray]], float], point: dict[str, np.ndarray],
                      grads: dict[str, np.ndarray], rng: np.random.Generator, name: str = "directional") -> Check:
    """Check ``grads`` (same keys as ``point``) against finite differences of ``f`` along one direction."""
    direction = {k: rng.standard_normal(np.shape(v)) for k, v in point.items()}
    norm = np.sqrt(sum(float(np.sum(d * d)) for d in direction.values()))
    direction = {k: d / norm for k, d in direction.items()}
    analytic = sum(float(np.sum(grads[k] * direction[k])) for k in point)
    plus = f({k: v + STEP * direction[k] for k, v in point.items()})
    minus = f({k: v - STEP * direction[k] for k, v in point.items()})
    numeric = (plus - minus) / (2 * STEP)
    scale = 1.0 + abs(f(point))
    allowance = Allowance(1e-8 * scale, 1e-6, f"atol 1e-8 x (1 + |f| = {scale:.3g})", RULE)
    return compare_tensor("reference", "finite differences", "gradient", name, np.array(analytic),
                          np.array(numeric), allowance, "float64")
