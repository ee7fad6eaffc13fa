"""A sequence model (stacked, optionally bidirectional recurrent layers + Dense head + loss) as pure
functions over a params dict.

This module is the *family* module of ``SequenceSpec``: the verifier reaches every model family
through the same functions: ``param_shapes``, ``check_params``, ``evaluate``, ``time_axis``,
``gate_blocks`` and ``decision_margins``.

Layer k runs each of its directions over the output sequence of layer k-1 (the inputs for k = 0);
the backward direction runs over the reversed sequence and its outputs are reversed back before
the directions are merged (``merge_mode``). ``forward`` returns results and an explicit cache;
``backward`` consumes the cache and returns the gradient of the loss with respect to every
parameter, the inputs and every initial state. ``evaluate`` runs both and returns:

    {"output":   {"prediction": (B, T, O) or (B, O), "hidden": (B, T, M) (return_sequences only)},
     "state":    {"rnn/k/d": (B, P), "rnn/k/d/c": (B, H) (LSTM), for every layer and direction},
     "loss":     {"loss": ()},
     "accuracy": {"accuracy": ()},
     "gradient": {<every parameter name>, "inputs", "rnn/k/d/initial_state", "rnn/k/d/initial_c"}}

Computation runs in the dtype of the arrays given (float64 for the oracle; float32 to measure the
rounding noise a float32 implementation must be allowed).
"""
from __future__ import annotations

import numpy as np

from reference import dense, losses, metrics, recurrent
from reference.layout import (RNN_PREFIX, check_params, gate_blocks, initial_state_gradient_name,  # noqa: F401
                              param_shapes, prefix, state_names, state_shapes)
from reference.spec import Batch, SequenceSpec

Results = dict[str, dict[str, np.ndarray]]


def _sub(params: dict, pre: str) -> dict:
    return {k[len(pre) + 1:]: v for k, v in params.items() if k.startswith(pre + "/")}


def initial_states(spec: SequenceSpec, batch: Batch) -> dict[str, np.ndarray]:
    """Every initial state by canonical name: the batch's, or zeros where it gives none."""
    b = batch.inputs.shape[0]
    given = batch.initial_state
    if given is None:
        given = {}
    elif not isinstance(given, dict):
        given = {RNN_PREFIX: given}
    shapes = state_shapes(spec, b)
    unknown = [n for n in given if n not in shapes]
    if unknown:
        raise ValueError(f"initial state(s) {unknown} are not states of {spec.name!r}; expected {list(shapes)}")
    out = {}
    for name, shape in shapes.items():
        value = given.get(name)
        if value is None:
            value = np.zeros(shape, batch.inputs.dtype)
        elif tuple(value.shape) != shape:
            raise ValueError(f"initial state {name}: expected shape {shape}, got {tuple(value.shape)}")
        out[name] = value
    return out


def mask_of(batch: Batch) -> np.ndarray | None:
    """(B, T) booleans: step t of sequence b is real when t < lengths[b]; None without lengths."""
    lengths = batch.lengths
    if lengths is None:
        return None
    steps = batch.inputs.shape[1]
    lengths = np.asarray(lengths)
    if lengths.shape != (batch.inputs.shape[0],) or np.any(lengths < 1) or np.any(lengths > steps):
        raise ValueError(f"lengths: expected {batch.inputs.shape[0]} integers in 1..{steps}, got {lengths}")
    return np.arange(steps)[None, :] < lengths[:, None]


def merge(mode: str, fw: np.ndarray, bw: np.ndarray) -> np.ndarray:
    if mode == "concat":
        return np.concatenate([fw, bw], axis=-1)
    if mode == "sum":
        return fw + bw
    if mode == "mul":
        return fw * bw
    return (fw + bw) / 2  # ave, as Keras computes it


def merge_backward(mode: str, fw: np.ndarray, bw: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if mode == "concat":
        p = fw.shape[-1]
        return d[..., :p], d[..., p:]
    if mode == "sum":
        return d, d
    if mode == "mul":
        return d * bw, d * fw
    return d / 2, d / 2


def forward(spec: SequenceSpec, params: dict, batch: Batch) -> tuple[Results, dict]:
    """Outputs, final states, loss and accuracy, and the cache for ``backward``."""
    check_params(spec, params)
    x = batch.inputs
    if x.ndim != 3 or x.shape[2] != spec.input_size:
        raise ValueError(f"inputs: expected shape (batch, steps, {spec.input_size}), got {x.shape}")
    states0 = initial_states(spec, batch)
    mask = mask_of(batch)
    zero_output = spec.zero_output_for_mask
    opts = recurrent.CELL_MODULES[spec.cell].options(spec)
    seq = x
    layers, final = [], {}
    for k in range(spec.num_layers):
        outs, caches = {}, {}
        for d in spec.directions:
            pre = prefix(k, d)
            s0 = tuple(states0[n] for n in state_names(spec, pre))
            backwards = d == "bw" or spec.go_backwards
            out, s_t, caches[d] = recurrent.forward(spec.cell, _sub(params, pre), seq, s0, opts, backwards,
                                                    mask, zero_output)
            outs[d] = out[:, ::-1] if d == "bw" else out  # bw back to input order
            final.update(zip(state_names(spec, pre), s_t))
        seq = merge(spec.merge_mode, outs["fw"], outs["bw"]) if spec.bidirectional else outs["fw"]
        layers.append((outs, caches))
    hidden = seq
    if spec.return_sequences:
        head_in = hidden
    elif spec.bidirectional and spec.last_output == "final":
        outs = layers[-1][0]
        head_in = merge(spec.merge_mode, outs["fw"][:, -1], outs["bw"][:, 0])
    else:
        head_in = hidden[:, -1]
    y = dense.forward(_sub(params, "head"), head_in)
    loss, dy = losses.loss_and_grad(spec.loss, y, batch.targets)
    results: Results = {
        "output": {"prediction": y},
        "state": final,
        "loss": {"loss": np.asarray(loss)},
        "accuracy": {"accuracy": np.asarray(metrics.accuracy(spec.accuracy, y, batch.targets, spec.loss,
                                                             spec.accuracy_tol))},
    }
    if spec.return_sequences:
        results["output"]["hidden"] = hidden
    cache = {"layers": layers, "head_in": head_in, "dy": dy, "hidden_shape": hidden.shape}
    return results, cache


def backward(spec: SequenceSpec, params: dict, cache: dict) -> dict[str, np.ndarray]:
    """Gradients of the loss: every parameter (canonical names), ``inputs`` and every initial state."""
    head_g, d_head_in = dense.backward(_sub(params, "head"), cache["head_in"], cache["dy"])
    grads = {f"head/{k}": v for k, v in head_g.items()}
    layers = cache["layers"]
    d_seq = np.zeros(cache["hidden_shape"], dtype=d_head_in.dtype)
    d_last = {}  # extra output gradients of the top layer, per direction, for last_output "final"
    if spec.return_sequences:
        d_seq = d_head_in
    elif spec.bidirectional and spec.last_output == "final":
        outs = layers[-1][0]
        d_fw, d_bw = merge_backward(spec.merge_mode, outs["fw"][:, -1], outs["bw"][:, 0], d_head_in)
        d_last = {"fw": (-1, d_fw), "bw": (0, d_bw)}
    else:
        d_seq[:, -1] = d_head_in
    initial = {}
    for k in reversed(range(spec.num_layers)):
        outs, caches = layers[k]
        if spec.bidirectional:
            d_outs = dict(zip(("fw", "bw"), merge_backward(spec.merge_mode, outs["fw"], outs["bw"], d_seq)))
        else:
            d_outs = {"fw": d_seq}
        if k == spec.num_layers - 1:
            for d, (t, g) in d_last.items():
                d_outs[d] = d_outs[d].copy()
                d_outs[d][:, t] += g
        d_below = None
        for d in spec.directions:
            pre = prefix(k, d)
            d_out = d_outs[d][:, ::-1] if d == "bw" else d_outs[d]  # to processing order
            d_final = tuple(np.zeros(shape, d_out.dtype) for shape in caches[d]["state_shapes"])
            g, dx, d0 = recurrent.backward(_sub(params, pre), caches[d], d_out, d_final)
            grads.update({f"{pre}/{n}": v for n, v in g.items()})
            initial.update({initial_state_gradient_name(n): v for n, v in zip(state_names(spec, pre), d0)})
            d_below = dx if d_below is None else d_below + dx
        d_seq = d_below
    # parameter order as in the layout, then inputs and initial states
    ordered = {n: grads[n] for n in param_shapes(spec)}
    ordered["inputs"] = d_seq
    for n in state_shapes(spec, 1):
        ordered[initial_state_gradient_name(n)] = initial[initial_state_gradient_name(n)]
    return ordered


def evaluate(spec: SequenceSpec, params: dict, batch: Batch) -> Results:
    """Forward and backward: the full nested results."""
    results, cache = forward(spec, params, batch)
    results["gradient"] = backward(spec, params, cache)
    return results


def loss_only(spec: SequenceSpec, params: dict, batch: Batch) -> float:
    """The scalar loss (for finite differences)."""
    return float(forward(spec, params, batch)[0]["loss"]["loss"])


def time_axis(spec: SequenceSpec, quantity: str, name: str) -> int | None:
    """The time axis of a result tensor, or None when it has none."""
    if (quantity, name) in (("output", "hidden"), ("gradient", "inputs")):
        return 1
    if (quantity, name) == ("output", "prediction") and spec.return_sequences:
        return 1
    return None


def decision_margins(spec: SequenceSpec, results: Results, batch: Batch) -> np.ndarray:
    """How far each accuracy decision of ``results`` is from flipping (one value per decision)."""
    return metrics.decision_margins(spec.accuracy, results["output"]["prediction"], batch.targets, spec.accuracy_tol)
