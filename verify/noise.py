"""The noise floor: how far rounding to a lower precision moves each reference tensor."""
from __future__ import annotations

import importlib

import numpy as np

from reference.spec import Batch

Results = dict[str, dict[str, np.ndarray]]


def floors(spec: object, params: dict[str, np.ndarray], batch64: Batch, dtype: str, ref: Results
           ) -> dict[tuple[str, str], float]:
    """Max |reference run in ``dtype`` - reference in float64| per tensor, same weights and inputs."""
    family = importlib.import_module(spec.family)
    cast = {k: v.astype(dtype) for k, v in params.items()}
    low = family.evaluate(spec, cast, batch64.astype(np.dtype(dtype)))
    return {(q, n): float(np.max(np.abs(np.asarray(low[q][n], dtype=np.float64) - v))) if v.size else 0.0
            for q, tensors in ref.items() for n, v in tensors.items()}
