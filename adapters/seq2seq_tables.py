"""Layout translation for the article's models: canonical name -> framework attribute path, as data.

Both frameworks' models are written here (adapters/keras_seq2seq.py, adapters/torch_seq2seq.py)
with the same structure as TF1's: a wrapper holds ``linear1`` (input projection), ``cell``,
``attention`` (``attn_w``, ``attn_v``, ``query``) and ``linear2`` (output projection); the model
holds the encoder, the output layer, the decoder (or the forward and backward cells). A path is a
dotted attribute path from the model to the variable. Keras keeps TF's shapes (kernels (in, out),
attn_w (1, 1, A, V)); torch stores Linear weights (out, in) and attn_w as (V, A), the squeezed
weight of a 1x1 convolution.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from adapters import tables
from adapters.tables import TensorMap
from reference import seq2seq_cell

# torch's attn_w (V, A) <-> canonical (1, 1, A, V)
tables.TRANSFORMS.setdefault("conv1x1_out_in", (lambda a: np.ascontiguousarray(a.T)[None, None],
                                                lambda a: np.ascontiguousarray(a[0, 0].T)))

_WRAPPER = ("input_projection/kernel", "linear1.kernel"), ("input_projection/bias", "linear1.bias"), \
    ("cell/kernel", "cell.kernel"), ("cell/bias", "cell.bias"), ("attention/attn_w", "attention.attn_w"), \
    ("attention/attn_v", "attention.attn_v"), ("attention/query/kernel", "attention.query.kernel"), \
    ("attention/query/bias", "attention.query.bias"), ("output_projection/kernel", "linear2.kernel"), \
    ("output_projection/bias", "linear2.bias")


def _model_paths(kind: str) -> list[tuple[str, str]]:
    """(canonical name, Keras attribute path), in the canonical (creation) order."""
    out = [("output/kernel", "output_layer.kernel"), ("output/bias", "output_layer.bias")]
    if kind == "attention":
        enc = [(f"encoder/{c}", f"encoder.{p}") for c, p in _WRAPPER]
        dec = [(f"decoder/{c}", f"decoder.{p}") for c, p in _WRAPPER]
        return enc + out + dec
    if kind == "seq2seq":
        return [("encoder/cell/kernel", "encoder.kernel"), ("encoder/cell/bias", "encoder.bias"), *out,
                ("decoder/cell/kernel", "decoder.kernel"), ("decoder/cell/bias", "decoder.bias")]
    return [("fw/cell/kernel", "fw.kernel"), ("fw/cell/bias", "fw.bias"), ("bw/cell/kernel", "bw.kernel"),
            ("bw/cell/bias", "bw.bias"), *out]


def keras_table(kind: str) -> tuple[TensorMap, ...]:
    return tuple(TensorMap(c, (p,)) for c, p in _model_paths(kind))


def _torch_path(path: str) -> tuple[str, str]:
    """Keras-style path -> (torch parameter path, transform)."""
    head, _, leaf = path.rpartition(".")
    if leaf == "attn_w":
        return path, "conv1x1_out_in"
    if leaf == "attn_v":
        return path, "identity"
    return f"{head}.{'weight' if leaf == 'kernel' else 'bias'}", "transpose" if leaf == "kernel" else "identity"


def torch_table(kind: str) -> tuple[TensorMap, ...]:
    return tuple(TensorMap(c, (_torch_path(p)[0],), _torch_path(p)[1]) for c, p in _model_paths(kind))


def to_canonical(table: tuple[TensorMap, ...], tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Framework arrays by path -> canonical float64 arrays, in the canonical order."""
    out = {}
    for e in table:
        out[e.canonical] = np.ascontiguousarray(tables.TRANSFORMS[e.transform][0](np.asarray(tensors[e.framework[0]],
                                                                                             np.float64)))
    return out


def from_canonical(table: tuple[TensorMap, ...], params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {e.framework[0]: np.ascontiguousarray(tables.TRANSFORMS[e.transform][1](params[e.canonical]))
            for e in table}


def final_states(prefix: str, cell_state: tuple, attention: tuple = ()) -> dict[str, Any]:
    """Result names of a final state: the cell's parts (reference/seq2seq_cell.STATE_PARTS), attns, window."""
    out = {f"state:{prefix}/cell{suffix}": v
           for suffix, v in zip(seq2seq_cell.STATE_PARTS["lstm" if len(cell_state) == 2 else "simple_rnn"], cell_state)}
    if attention:
        out.update({f"state:{prefix}/attns": attention[0], f"state:{prefix}/attn_states": attention[1]})
    return out
