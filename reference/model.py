"""A sequence model (stacked, optionally bidirectional recurrent layers + Dense head + loss) as pure
functions over a params dict.

This module is the *family* module of ``SequenceSpec``: the verifier reaches every model family
through the same functions: ``param_shapes``, ``check_params``, ``evaluate``, ``time_axis``,
``gate_blocks`` and ``decision_margins``.

A ``SequenceSpec`` is the compact way the zoo and the tests write a layer stack: ``forward`` and
``backward`` run ``reference.stack`` on ``stack.from_sequence(spec)`` (recurrent layers ``rnn/0``,
``rnn/1``, ... and a Dense ``head``), so there is one reference path from a description to results.
Layer k runs each of its directions over the output sequence of layer k-1 (the inputs for k = 0);
the backward direction runs over the reversed sequence and its outputs are reversed back before
the directions are merged (``merge_mode``). ``evaluate`` runs both and returns:

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

from reference import metrics, stack
from reference.layout import (check_params, gate_blocks, initial_state_gradient_name,  # noqa: F401
                              param_shapes, prefix, state_names, state_shapes)
from reference.spec import Batch, SequenceSpec

Results = dict[str, dict[str, np.ndarray]]


def initial_states(spec: SequenceSpec, batch: Batch) -> dict[str, np.ndarray]:
    """Every initial state by canonical name: the batch's, or zeros where it gives none."""
    return stack.initial_states(stack.from_sequence(spec), batch)


def forward(spec: SequenceSpec, params: dict, batch: Batch) -> tuple[Results, dict]:
    """Outputs, final states, loss and accuracy, and the cache for ``backward``: the layer stack of
    ``stack.from_sequence(spec)``, with the top layer's sequence reported as ``hidden``."""
    layered = stack.from_sequence(spec)  # stack.forward checks params against the same layout
    results, cache = stack.forward(layered, params, batch)
    top = layered.recurrent_layers[-1].name
    output = {"prediction": results["output"]["prediction"]}
    if spec.return_sequences:
        output["hidden"] = results["output"][top]
    results["output"] = output
    return results, cache


def backward(spec: SequenceSpec, params: dict, cache: dict) -> dict[str, np.ndarray]:
    """Gradients of the loss: every parameter (canonical names), ``inputs`` and every initial state."""
    return stack.backward(stack.from_sequence(spec), params, cache)


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
