"""Structural checks of a params dict against a family's layout, with messages naming what was expected."""
from __future__ import annotations

import numpy as np


def check_layout(expected: dict[str, tuple[int, ...]], params: dict, model: str) -> None:
    """ValueError naming the expected layout (count, names, shapes) when ``params`` is not in it, or holds NaN."""
    layout = "; ".join(f"{n} {s}" for n, s in expected.items())
    missing = [n for n in expected if n not in params]
    extra = [n for n in params if n not in expected]
    if missing or extra:
        raise ValueError(f"parameters do not match the layout of {model}: got {len(params)} tensors, expected "
                         f"{len(expected)}; missing {missing}, unexpected {extra}; expected layout: {layout}")
    for name, shape in expected.items():
        got = tuple(np.shape(params[name]))
        if got != tuple(shape):
            raise ValueError(f"parameter {name}: expected shape {tuple(shape)}, got {got}; expected layout: {layout}")
        if not np.all(np.isfinite(params[name])):
            raise ValueError(f"parameter {name} holds NaN or infinite values")
