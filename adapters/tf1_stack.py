"""TF1 graph cells for layer stacks that are one homogeneous cell stack (``reference.stack.to_sequence``):
the stack is handed to ``adapters.tf1_cells`` as the ``SequenceSpec`` it is, and its results renamed back."""
from __future__ import annotations

from typing import Any

import numpy as np

from adapters import tf1_cells
from reference import stack
from reference.spec import Batch
from reference.stack import StackSpec

FRAMEWORK = "tf1"


def versions() -> dict[str, str]:
    return tf1_cells.versions()


def _sequence(spec: StackSpec) -> Any:
    seq = stack.to_sequence(spec)
    if seq is None:
        raise ValueError(f"TF1 cells run one stack of identical recurrent layers and a linear Dense head; "
                         f"{spec.name!r} is {[type(l).__name__ for l in spec.layers]}")
    return seq


def supports(spec: StackSpec, masked: bool = False) -> str | None:
    seq = stack.to_sequence(spec)
    return "not one homogeneous TF1 cell stack" if seq is None else tf1_cells.supports(seq, masked)


def build(spec: StackSpec, params: dict[str, np.ndarray], dtype: str, **options: Any) -> Any:
    """``options``: ``tf1_cells.build``'s (lstm_cell, state_is_tuple)."""
    return tf1_cells.build(_sequence(spec), params, dtype, **options)


def extract(model: Any) -> dict[str, np.ndarray]:
    return tf1_cells.extract(model)


def run(model: Any, spec: StackSpec, batch: Batch, dtype: str) -> dict[str, dict[str, np.ndarray]]:
    """TF1's results, the top layer's sequence under its layer name (lower layers' outputs are not visible)."""
    results = tf1_cells.run(model, _sequence(spec), batch, dtype)
    if "hidden" in results["output"]:
        results["output"][spec.recurrent_layers[-1].name] = results["output"].pop("hidden")
    return results
