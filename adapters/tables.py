"""Layout translation as data: how each canonical tensor is stored in a framework.

A ``TensorMap`` says which framework tensor(s) hold a canonical tensor and which transform turns
the framework array into the canonical one. When several framework tensors are listed (torch's
``bias_ih`` and ``bias_hh``), extraction adds them and building writes the value into the first and zeros into
the other (or splits it unequally over both, for models built to be verified): this is exact for the
simple RNN and the LSTM, whose two biases only ever appear as a sum.

The same table drives ``build`` (canonical -> framework, the inverse transform) and ``extract``
(framework -> canonical), so the two directions cannot disagree.

A framework name ``bias[1]`` means row 1 of the framework tensor ``bias`` (Keras's GRU bias (2, 3H):
row 0 the input bias, row 1 the recurrent bias); ``split_rows`` and ``join_rows`` turn such tensors
into rows and back.

Gate permutations: torch's GRU stores its gates r, z, n; the canonical order is z, r, h, so the
``*_rzn`` transforms swap the first two blocks (a swap is its own inverse).
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
def permute_blocks(a: np.ndarray, order: tuple[int, ...], axis: int = -1) -> np.ndarray:
    """Blocks of equal size along ``axis``, reordered: block j of the result is block order[j]."""
    blocks = np.split(a, len(order), axis=axis)
    return np.concatenate([blocks[j] for j in order], axis=axis)


_SWAP01 = (1, 0, 2)  # r, z, n <-> z, r, h

TRANSFORMS: dict[str, tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]]] = {
    "identity": (lambda a: a, lambda a: a),
    "transpose": (lambda a: a.T, lambda a: a.T),
    "transpose_rzn": (lambda a: permute_blocks(a.T, _SWAP01), lambda a: permute_blocks(a, _SWAP01).T),
    "rzn": (lambda a: permute_blocks(a, _SWAP01), lambda a: permute_blocks(a, _SWAP01)),
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
KERAS_LSTM = KERAS_SIMPLE_RNN  # i, f, c, o is the canonical i, f, g, o
KERAS_GRU_BEFORE = KERAS_SIMPLE_RNN  # reset_after=False: one bias (3H), gates z, r, h
KERAS_GRU_AFTER = (
    TensorMap("kernel", ("kernel",)),
    TensorMap("recurrent_kernel", ("recurrent_kernel",)),
    TensorMap("bias", ("bias[0]",)),
    TensorMap("recurrent_bias", ("bias[1]",)),
)
# torch LSTM: the two biases only appear as a sum; the canonical bias goes into bias_ih.
TORCH_LSTM = (
    TensorMap("kernel", ("weight_ih_l{layer}{suffix}",), "transpose"),
    TensorMap("recurrent_kernel", ("weight_hh_l{layer}{suffix}",), "transpose"),
    TensorMap("bias", ("bias_ih_l{layer}{suffix}", "bias_hh_l{layer}{suffix}")),
    TensorMap("projection", ("weight_hr_l{layer}{suffix}",), "transpose"),
)
# torch GRU: bias_hh is inside the reset product for the n gate, so it stays a tensor of its own.
TORCH_GRU = (
    TensorMap("kernel", ("weight_ih_l{layer}{suffix}",), "transpose_rzn"),
    TensorMap("recurrent_kernel", ("weight_hh_l{layer}{suffix}",), "transpose_rzn"),
    TensorMap("bias", ("bias_ih_l{layer}{suffix}",), "rzn"),
    TensorMap("recurrent_bias", ("bias_hh_l{layer}{suffix}",), "rzn"),
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


def _second_summand(value: np.ndarray) -> np.ndarray:
    """The part of a summed tensor written into its second tensor: half of each even element, all of each odd
    one. Both parts and their sum are exact in any dtype (halving and zero are exact, and rounding commutes
    with halving), and the two parts differ, so reading one of them twice gives a wrong sum."""
    second = value * 0.5
    second[..., 1::2] = value[..., 1::2]
    return second


def from_canonical(table: tuple[TensorMap, ...], params: dict[str, np.ndarray], prefix: str,
                   fmt: dict | None = None, split: bool = False) -> dict[str, np.ndarray]:
    """Canonical arrays -> framework tensors by framework name. A tensor stored as a sum of two goes into the
    first, the second zero; with ``split``, into both, unequally (``_second_summand``), so that a reader that
    ignored either summand, or read one of them twice, would be caught."""
    out: dict[str, np.ndarray] = {}
    for entry in table:
        key = f"{prefix}/{entry.canonical}"
        if key not in params:
            continue
        value = np.ascontiguousarray(TRANSFORMS[entry.transform][1](params[key]))
        names = [n.format(**(fmt or {})) for n in entry.framework]
        second = _second_summand(value) if split and len(names) == 2 else np.zeros_like(value)
        out[names[0]] = value - second
        for extra in names[1:]:
            out[extra] = second
    return out


def check_shapes(expected: dict[str, tuple[int, ...]], got: dict[str, np.ndarray], where: str) -> None:
    """Raise ValueError naming the tensor and both shapes at the first disagreement."""
    for name, shape in expected.items():
        if name not in got:
            raise ValueError(f"{where}: missing tensor {name} (expected shape {shape})")
        if tuple(got[name].shape) != tuple(shape):
            raise ValueError(f"{where}: tensor {name} has shape {tuple(got[name].shape)}, expected {tuple(shape)}")


def split_rows(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Add ``name[i]`` for each row of every 2-D tensor named ``bias`` (Keras GRU reset_after)."""
    out = dict(tensors)
    for name, value in tensors.items():
        if name == "bias" and np.ndim(value) == 2:
            out.update({f"{name}[{i}]": np.asarray(value)[i] for i in range(np.shape(value)[0])})
    return out


def join_rows(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Stack ``name[0]``, ``name[1]``, ... back into ``name``."""
    out: dict[str, np.ndarray] = {}
    rows: dict[str, dict[int, np.ndarray]] = {}
    for name, value in tensors.items():
        if name.endswith("]") and "[" in name:
            base, idx = name[:-1].split("[")
            rows.setdefault(base, {})[int(idx)] = value
        else:
            out[name] = value
    for base, parts in rows.items():
        out[base] = np.stack([parts[i] for i in sorted(parts)])
    return out
