"""TF1 graph cells for layer stacks that are one homogeneous cell stack (``reference.stack.to_sequence``):
the stack is handed to ``adapters.tf1_cells`` as the ``SequenceSpec`` it is, and its results renamed back."""
from __future__ import annotations

from typing import Any

import numpy as np

from adapters import tf1_cells
from reference import stack
from reference.layers import check_buildable
from reference.spec import Batch
from reference.stack import StackSpec

FRAMEWORK = "tf1"
BUILD_OPTIONS = ("lstm_cell", "state_is_tuple")

# Options a model chose for its TF1 side (``compare --model random`` draws the LSTM cell and the state
# layout), by spec: the engine builds every framework with build(spec, params, dtype), so they travel here.
# A drawn spec's description names its options and its seed, so one spec never needs two sets.
_CHOSEN: dict[StackSpec, dict[str, Any]] = {}


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


def set_build_options(spec: StackSpec, **options: Any) -> None:
    """Build ``spec`` with these ``tf1_cells.build`` options (lstm_cell, state_is_tuple) from now on, where a
    ``build`` call does not name them itself."""
    unknown = sorted(set(options) - set(BUILD_OPTIONS))
    if unknown:
        raise ValueError(f"unknown TF1 build option(s) {', '.join(unknown)}; expected: {', '.join(BUILD_OPTIONS)}")
    _CHOSEN[spec] = dict(options)


def build_options(spec: StackSpec) -> dict[str, Any]:
    """The options ``set_build_options`` chose for ``spec`` (empty: tf1_cells.build's defaults)."""
    return dict(_CHOSEN.get(spec, {}))


def build(spec: StackSpec, params: dict[str, np.ndarray], dtype: str, **options: Any) -> Any:
    """``options``: ``tf1_cells.build``'s (lstm_cell, state_is_tuple); those not given come from
    ``set_build_options``."""
    check_buildable(spec.layers, "TF1")
    return tf1_cells.build(_sequence(spec), params, dtype, **{**build_options(spec), **options})


def extract(model: Any) -> dict[str, np.ndarray]:
    return tf1_cells.extract(model)


def run(model: Any, spec: StackSpec, batch: Batch, dtype: str) -> dict[str, dict[str, np.ndarray]]:
    """TF1's results, the top layer's output (sequence or last output) under its layer name (lower layers'
    outputs are not visible)."""
    results = tf1_cells.run(model, _sequence(spec), batch, dtype)
    results["output"][spec.recurrent_layers[-1].name] = results["output"].pop("hidden")
    return results
