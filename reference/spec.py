"""Frozen description of a model (the spec) and of one batch of data that every layer shares."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

CELLS = ("simple_rnn",)
ACTIVATIONS = ("tanh", "relu", "sigmoid", "linear")
LOSSES = ("mse", "softmax_ce", "clipped_log_ce")
ACCURACIES = ("argmax", "abs_tol")


@dataclass(frozen=True)
class SequenceSpec:
    """A recurrent layer followed by a Dense head, a loss and an accuracy rule.

    ``return_sequences`` applies the head to every step (outputs (B, T, O)); otherwise only to the
    last output (B, O). ``go_backwards`` feeds the steps in reverse and, as Keras does, returns the
    outputs in processing order.
    """

    family: ClassVar[str] = "reference.model"  # module with evaluate, param_shapes, time_axis, ...

    name: str
    input_size: int
    hidden_size: int
    output_size: int
    cell: str = "simple_rnn"
    activation: str = "tanh"
    use_bias: bool = True
    return_sequences: bool = True
    go_backwards: bool = False
    loss: str = "mse"
    accuracy: str = "abs_tol"
    accuracy_tol: float = 0.05
    description: str = ""

    def __post_init__(self) -> None:
        for value, allowed, what in (
            (self.cell, CELLS, "cell"),
            (self.activation, ACTIVATIONS, "activation"),
            (self.loss, LOSSES, "loss"),
            (self.accuracy, ACCURACIES, "accuracy"),
        ):
            if value not in allowed:
                raise ValueError(f"unknown {what} {value!r}; expected one of {', '.join(allowed)}")
        for value, what in ((self.input_size, "input_size"), (self.hidden_size, "hidden_size"),
                            (self.output_size, "output_size")):
            if value < 1:
                raise ValueError(f"{what} must be >= 1, got {value}")


@dataclass(frozen=True)
class Batch:
    """Inputs (B, T, D), targets and an optional initial state (B, H).

    Targets: float (B, T, O) or (B, O) for ``mse``; integer labels (B, T) or (B,) for
    ``softmax_ce``; one-hot float (B, T, O) or (B, O) for ``clipped_log_ce``.
    """

    inputs: np.ndarray
    targets: np.ndarray
    initial_state: np.ndarray | None = field(default=None)

    def astype(self, dtype: np.dtype) -> "Batch":
        """The same batch with float arrays cast to ``dtype`` (integer labels stay integers)."""
        def cast(a: np.ndarray | None) -> np.ndarray | None:
            if a is None or not np.issubdtype(a.dtype, np.floating):
                return a
            return a.astype(dtype)
        return Batch(cast(self.inputs), cast(self.targets), cast(self.initial_state))
