"""TF1 cell layouts as data: which blocks of which TF1 variables make up each canonical tensor.

TF1 cells multiply one kernel by concat([x, h]): rows [0, D) act on the input (canonical
``kernel``), rows [D, D+P) on the state (canonical ``recurrent_kernel``). Gate blocks are columns:

* BasicRNNCell: kernel (D+P, H), bias (H).
* BasicLSTMCell / LSTMCell: kernel (D+P, 4H) with blocks i, j, f, o (canonical i, f, g, o, g = j),
  bias (4H) in the same order; LSTMCell adds w_i_diag, w_f_diag, w_o_diag (H) and
  projection/kernel (H, P). forget_bias is a constructor argument, not a variable.
* GRUCell: gates/kernel (D+H, 2H) with blocks r, u (u is the canonical z), gates/bias (2H),
  candidate/kernel (D+H, H), candidate/bias (H).

``Tf1Map(canonical, rows, blocks)``: the canonical tensor is the concatenation (last axis) of
``blocks``, each ``(variable, index, count)`` = block ``index`` of ``count`` equal column blocks of
that variable, restricted to ``rows`` ("x", "h", or None for vectors). ``gather`` (extract) and
``scatter`` (build) both read these tables.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Tf1Map:
    canonical: str
    rows: str | None                        # "x", "h" or None
    blocks: tuple[tuple[str, int, int], ...]


def _kernel_pair(blocks: tuple[tuple[str, int, int], ...]) -> tuple[Tf1Map, Tf1Map]:
    return Tf1Map("kernel", "x", blocks), Tf1Map("recurrent_kernel", "h", blocks)


_LSTM_BLOCKS = (("kernel", 0, 4), ("kernel", 2, 4), ("kernel", 1, 4), ("kernel", 3, 4))  # i, f<-f, g<-j, o
_GRU_BLOCKS = (("gates/kernel", 1, 2), ("gates/kernel", 0, 2), ("candidate/kernel", 0, 1))  # z<-u, r, h

TF1_RNN = (*_kernel_pair((("kernel", 0, 1),)), Tf1Map("bias", None, (("bias", 0, 1),)))
TF1_LSTM = (*_kernel_pair(_LSTM_BLOCKS),
            Tf1Map("bias", None, tuple(("bias", i, n) for _, i, n in _LSTM_BLOCKS)),
            Tf1Map("peephole_i", None, (("w_i_diag", 0, 1),)),
            Tf1Map("peephole_f", None, (("w_f_diag", 0, 1),)),
            Tf1Map("peephole_o", None, (("w_o_diag", 0, 1),)),
            Tf1Map("projection", None, (("projection/kernel", 0, 1),)))
TF1_GRU = (*_kernel_pair(_GRU_BLOCKS),
           Tf1Map("bias", None, (("gates/bias", 1, 2), ("gates/bias", 0, 2), ("candidate/bias", 0, 1))))
TABLES = {"simple_rnn": TF1_RNN, "lstm": TF1_LSTM, "gru": TF1_GRU}


def _rows(a: np.ndarray, rows: str | None, d: int) -> np.ndarray:
    if rows is None:
        return a
    return a[:d] if rows == "x" else a[d:]


def _block(a: np.ndarray, index: int, count: int) -> np.ndarray:
    w = a.shape[-1] // count
    return a[..., index * w:(index + 1) * w]


def gather(table: tuple[Tf1Map, ...], variables: dict[str, np.ndarray], input_size: int,
           prefix: str) -> dict[str, np.ndarray]:
    """TF1 variables of one cell (names relative to the cell) -> canonical float64 tensors."""
    out: dict[str, np.ndarray] = {}
    for entry in table:
        if any(v not in variables for v, _, _ in entry.blocks):
            continue  # e.g. no peepholes or projection in this cell
        parts = [_block(_rows(np.asarray(variables[v], np.float64), entry.rows, input_size), i, n)
                 for v, i, n in entry.blocks]
        out[f"{prefix}/{entry.canonical}"] = np.ascontiguousarray(np.concatenate(parts, axis=-1))
    return out


def scatter(table: tuple[Tf1Map, ...], params: dict[str, np.ndarray], shapes: dict[str, tuple[int, ...]],
            input_size: int, prefix: str) -> dict[str, np.ndarray]:
    """Canonical tensors -> TF1 variables of one cell, by their ``shapes`` (every element written)."""
    out = {name: np.full(shape, np.nan) for name, shape in shapes.items()}
    for entry in table:
        key = f"{prefix}/{entry.canonical}"
        if key not in params:
            continue
        value, start = params[key], 0
        for v, i, n in entry.blocks:
            if v not in out:
                raise ValueError(f"TF1 cell has no variable {v} for {key}; it has {sorted(out)}")
            target = _rows(out[v], entry.rows, input_size)  # a view: writes land in out[v]
            w = target.shape[-1] // n
            if value.shape[-1] < start + w or target.shape[:-1] != value.shape[:-1]:
                raise ValueError(f"{key} of shape {value.shape} does not fit TF1 variable {v} of shape {out[v].shape}")
            target[..., i * w:(i + 1) * w] = value[..., start:start + w]
            start += w
    unset = [n for n, a in out.items() if np.isnan(a).any()]
    if unset:
        raise ValueError(f"TF1 variables {unset} under {prefix} are not covered by the canonical parameters")
    return out
