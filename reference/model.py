"""A sequence model (recurrent layer + Dense head + loss) as pure functions over a params dict.

This module is the *family* module of ``SequenceSpec``: the verifier reaches every model family
through the same functions: ``param_shapes``, ``check_params``, ``evaluate``, ``time_axis``,
``gate_blocks`` and ``decision_margins``.

``forward`` returns results and an explicit cache; ``backward`` consumes the cache and returns the
gradient of the loss with respect to every parameter, the inputs and the initial state.
``evaluate`` runs both and returns the nested results the verifier compares:

    {"output":   {"prediction": (B, T, O) or (B, O), "hidden": (B, T, H)},
     "state":    {"rnn/0/fw": (B, H)},
     "loss":     {"loss": ()},
     "accuracy": {"accuracy": ()},
     "gradient": {<every parameter name>, "inputs", "rnn/0/fw/initial_state"}}

Computation runs in the dtype of the arrays given (float64 for the oracle; float32 to measure the
rounding noise a float32 implementation must be allowed).
"""
from __future__ import annotations

import numpy as np

from reference import dense, losses, metrics, recurrent
from reference.layout import RNN_PREFIX, check_params, gate_blocks, param_shapes  # noqa: F401 (family API)
from reference.spec import Batch, SequenceSpec

Results = dict[str, dict[str, np.ndarray]]


def _split(params: dict) -> tuple[dict, dict]:
    rnn = {k[len(RNN_PREFIX) + 1:]: v for k, v in params.items() if k.startswith(RNN_PREFIX + "/")}
    head = {k[len("head/"):]: v for k, v in params.items() if k.startswith("head/")}
    return rnn, head


def forward(spec: SequenceSpec, params: dict, batch: Batch) -> tuple[Results, dict]:
    """Outputs, final state, loss and accuracy, and the cache for ``backward``."""
    check_params(spec, params)
    x = batch.inputs
    if x.ndim != 3 or x.shape[2] != spec.input_size:
        raise ValueError(f"inputs: expected shape (batch, steps, {spec.input_size}), got {x.shape}")
    rnn_p, head_p = _split(params)
    b = x.shape[0]
    h0 = batch.initial_state if batch.initial_state is not None else np.zeros((b, spec.hidden_size), x.dtype)
    hidden, (h_t,), rnn_cache = recurrent.forward(spec.cell, rnn_p, x, (h0,), spec.activation, spec.go_backwards)
    head_in = hidden if spec.return_sequences else hidden[:, -1]
    y = dense.forward(head_p, head_in)
    loss, dy = losses.loss_and_grad(spec.loss, y, batch.targets)
    results: Results = {
        "output": {"prediction": y},
        "state": {RNN_PREFIX: h_t},
        "loss": {"loss": np.asarray(loss)},
        "accuracy": {"accuracy": np.asarray(metrics.accuracy(spec.accuracy, y, batch.targets, spec.loss,
                                                             spec.accuracy_tol))},
    }
    if spec.return_sequences:
        results["output"]["hidden"] = hidden
    cache = {"rnn": rnn_cache, "head_in": head_in, "dy": dy, "hidden_shape": hidden.shape}
    return results, cache


def backward(spec: SequenceSpec, params: dict, cache: dict) -> dict[str, np.ndarray]:
    """Gradients of the loss: every parameter (canonical names), ``inputs`` and the initial state."""
    rnn_p, head_p = _split(params)
    head_g, d_head_in = dense.backward(head_p, cache["head_in"], cache["dy"])
    if spec.return_sequences:
        d_hidden = d_head_in
    else:
        d_hidden = np.zeros(cache["hidden_shape"], dtype=d_head_in.dtype)
        d_hidden[:, -1] = d_head_in
    d_final = (np.zeros_like(d_hidden[:, -1]),)
    rnn_g, dx, (dh0,) = recurrent.backward(rnn_p, cache["rnn"], d_hidden, d_final)
    grads = {f"{RNN_PREFIX}/{k}": v for k, v in rnn_g.items()}
    grads.update({f"head/{k}": v for k, v in head_g.items()})
    grads["inputs"] = dx
    grads[f"{RNN_PREFIX}/initial_state"] = dh0
    return grads


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
