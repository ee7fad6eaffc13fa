"""Layout translation as data: how each canonical tensor is stored in a framework.

A ``TensorMap`` says which framework tensor(s) hold a canonical tensor and which transform turns
the framework array into the canonical one. When several framework tensors are listed (torch's
``bias_ih`` and ``bias_hh``), extraction adds them and building writes the value into the first
and zeros into the others: this is exact for the simple RNN, whose two biases only ever appear
as a sum.

The same table drives ``build`` (canonical -> framework, the inverse transform) and ``extract``
(framework -> canonical), so the two directions cannot disagree.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class TensorMap:
    canonical: str                 # suffix under the layer's canonical prefix, e.g. "kernel"
    framework: tuple[str, ...]     # framework tensor name(s); placeholders {layer} and {suffix}
    transform: str = "identity"    # name in TRANSFORMS


# name -> (framework array -> canonical array, canonical array -> framework array)
TRANSFORMS: dict[str, tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]]] = {
    "identity": (lambda a: a, lambda a: a),
    "transpose": (lambda a: a.T, lambda a: a.T),
}

KERAS_SIMPLE_RNN = (
    TensorMap("kernel", ("kernel",)),
    TensorMap("recurrent_kernel", ("recurrent_kernel",)),
    TensorMap("bias", ("bias",)),
)
KERAS_DENSE = (
    TensorMap("kernel", ("kernel",)),
    TensorMap("bias", ("bias",)),
)
TORCH_RNN = (
    TensorMap("kernel", ("weight_ih_l{layer}{suffix}",), "transpose"),
    TensorMap("recurrent_kernel", ("weight_hh_l{layer}{suffix}",), "transpose"),
    TensorMap("bias", ("bias_ih_l{layer}{suffix}", "bias_hh_l{layer}{suffix}")),
)
TORCH_LINEAR = (
    TensorMap("kernel", ("weight",), "transpose"),
    TensorMap("bias", ("bias",)),
)


def to_canonical(table: tuple[TensorMap, ...], tensors: dict[str, np.ndarray], prefix: str,
                 fmt: dict | None = None) -> dict[str, np.ndarray]:
    """Framework tensors (by framework name) -> canonical float64 arrays named ``prefix/<canonical>``."""
    out: dict[str, np.ndarray] = {}
    for entry in table:
        names = [n.format(**(fmt or {})) for n in entry.framework]
        present = [n for n in names if n in tensors]
        if not present:
            continue  # e.g. a layer built without bias
        value = sum(np.asarray(tensors[n], dtype=np.float64) for n in present)
        out[f"{prefix}/{entry.canonical}"] = np.ascontiguousarray(TRANSFORMS[entry.transform][0](value))
    return out


def from_canonical(table: tuple[TensorMap, ...], params: dict[str, np.ndarray], prefix: str,
                   fmt: dict | None = None) -> dict[str, np.ndarray]:
    """Canonical arrays -> framework tensors by framework name (extra summands set to zero)."""
    out: dict[str, np.ndarray] = {}
    for entry in table:
        key = f"{prefix}/{entry.canonical}"
        if key not in params:
            continue
        value = np.ascontiguousarray(TRANSFORMS[entry.transform][1](params[key]))
        names = [n.format(**(fmt or {})) for n in entry.framework]
        out[names[0]] = value
        for extra in names[1:]:
            out[extra] = np.zeros_like(value)
    return out


def check_shapes(expected: dict[str, tuple[int, ...]], got: dict[str, np.ndarray], where: str) -> None:
    """Raise ValueError naming the tensor and both shapes at the first disagreement."""
    for name, shape in expected.items():
        if name not in got:
            raise ValueError(f"{where}: missing tensor {name} (expected shape {shape})")
        if tuple(got[name].shape) != tuple(shape):
            raise ValueError(f"{where}: tensor {name} has shape {tuple(got[name].shape)}, expected {tuple(shape)}")
