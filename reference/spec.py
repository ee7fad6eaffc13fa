"""Frozen description of a model (the spec) and of one batch of data that every layer shares."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

CELLS = ("simple_rnn", "lstm", "gru")
ACTIVATIONS = ("tanh", "relu", "sigmoid", "linear", "hard_sigmoid", "hard_sigmoid_keras2")
MERGE_MODES = ("concat", "sum", "mul", "ave")
LAST_OUTPUTS = ("final", "last_step")
LOSSES = ("mse", "softmax_ce", "clipped_log_ce")
ACCURACIES = ("argmax", "abs_tol")


@dataclass(frozen=True)
class SequenceSpec:
    """Recurrent layers followed by a Dense head, a loss and an accuracy rule.

    ``return_sequences`` applies the head to every step (outputs (B, T, O)); otherwise only to the
    last output (B, O). ``go_backwards`` feeds the steps in reverse and, as Keras does, returns the
    outputs in processing order (one forward layer only).

    Recurrent options (defaults keep the single simple RNN layer):

    * ``cell``: ``simple_rnn``, ``lstm`` or ``gru`` (equations in reference/<cell>.py).
    * ``recurrent_activation``: the gate activation of LSTM and GRU (``hard_sigmoid`` is Keras 3's
      and torch's relu6(x+3)/6; ``hard_sigmoid_keras2`` is Keras 2's clip(0.2x+0.5, 0, 1)).
    * ``reset_after``: GRU applies the reset gate after the recurrent matmul (torch, Keras default)
      or before it (Keras reset_after=False, TF1 GRUCell).
    * ``forget_bias``: added to the LSTM forget pre-activation at run time (TF1 cells); not stored.
    * ``use_peepholes``, ``proj_size``: TF1 LSTMCell peepholes; torch proj_size / TF1 num_proj
      (0 = no projection).
    * ``num_layers``: stacked layers, each fed the (merged) output sequence of the one below.
    * ``bidirectional`` with ``merge_mode`` (concat, sum, mul, ave) of the forward and backward
      outputs, and ``last_output`` for ``return_sequences=False``: ``final`` = [forward after all
      steps, backward after the whole reversed sequence] (Keras Bidirectional); ``last_step`` = the
      merged output at the last time step, whose backward half has seen only the last input
      (TF1 static_bidirectional_rnn(...)[0][-1], torch out[:, -1]).
    * ``zero_output_for_mask``: with a batch's ``lengths``, the output at a padded step is zero
      (torch packed sequences, TF1 sequence_length, Keras zero_output_for_mask=True) or the last
      real step's output (Keras's RNN default). The state is carried through padded steps either way.
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
    recurrent_activation: str = "sigmoid"
    reset_after: bool = True
    forget_bias: float = 0.0
    use_peepholes: bool = False
    proj_size: int = 0
    num_layers: int = 1
    bidirectional: bool = False
    merge_mode: str = "concat"
    last_output: str = "final"
    zero_output_for_mask: bool = True

    @property
    def directions(self) -> tuple[str, ...]:
        return ("fw", "bw") if self.bidirectional else ("fw",)

    @property
    def output_width(self) -> int:
        """Width of one direction's output (the projection size when there is one)."""
        return self.proj_size or self.hidden_size

    @property
    def merged_width(self) -> int:
        """Width of a layer's output sequence after merging directions."""
        return self.output_width * (2 if self.bidirectional and self.merge_mode == "concat" else 1)

    def __post_init__(self) -> None:
        for value, allowed, what in (
            (self.cell, CELLS, "cell"),
            (self.activation, ACTIVATIONS, "activation"),
            (self.recurrent_activation, ACTIVATIONS, "recurrent_activation"),
            (self.merge_mode, MERGE_MODES, "merge_mode"),
            (self.last_output, LAST_OUTPUTS, "last_output"),
            (self.loss, LOSSES, "loss"),
            (self.accuracy, ACCURACIES, "accuracy"),
        ):
            if value not in allowed:
                raise ValueError(f"unknown {what} {value!r}; expected one of {', '.join(allowed)}")
        for value, what in ((self.input_size, "input_size"), (self.hidden_size, "hidden_size"),
                            (self.output_size, "output_size")):
            if value < 1:
                raise ValueError(f"{what} must be >= 1, got {value}")
        if self.num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {self.num_layers}")
        if self.proj_size < 0:
            raise ValueError(f"proj_size must be >= 0, got {self.proj_size}")
        if self.cell != "lstm" and (self.use_peepholes or self.proj_size or self.forget_bias):
            raise ValueError(f"use_peepholes, proj_size and forget_bias are LSTM options; cell is {self.cell!r}")
        if self.go_backwards and (self.bidirectional or self.num_layers > 1):
            raise ValueError("go_backwards applies to a single forward layer; "
                             "use bidirectional for a backward direction")


@dataclass(frozen=True)
class Batch:
    """Inputs (B, T, D), targets and optional initial states.

    ``initial_state``: an array (B, H), the state of layer 0 forward (``rnn/0/fw``), or a dict from
    canonical state names (``reference.layout.state_shapes``) to arrays; absent states are zero.
    ``lengths``: optional integers (B,) in 1..T; steps t >= lengths[b] of sequence b are padding
    (masked), as a Keras mask, torch packed sequence or TF1 sequence_length gives them.
    ``dropout_masks``: optional keep masks (float 0/1) by Dropout layer name, each of the shape of that
    layer's input; a Dropout layer with a mask computes x * mask / (1 - rate), one without is the identity
    (inference). The reference draws them (``reference.dropout.draw_dropout_masks``), so that every
    framework drops the same units.

    Targets: float (B, T, O) or (B, O) for ``mse``; integer labels (B, T) or (B,) for
    ``softmax_ce``; one-hot float (B, T, O) or (B, O) for ``clipped_log_ce``.
    """

    inputs: np.ndarray
    targets: np.ndarray
    initial_state: np.ndarray | dict | None = field(default=None)
    lengths: np.ndarray | None = field(default=None)
    dropout_masks: dict | None = field(default=None)

    def astype(self, dtype: np.dtype) -> "Batch":
        """The same batch with float arrays cast to ``dtype`` (integer labels stay integers)."""
        def cast(a: np.ndarray | None) -> np.ndarray | None:
            if a is None or not np.issubdtype(a.dtype, np.floating):
                return a
            return a.astype(dtype)
        state = self.initial_state
        state = {k: cast(v) for k, v in state.items()} if isinstance(state, dict) else cast(state)
        masks = None if self.dropout_masks is None else {k: cast(v) for k, v in self.dropout_masks.items()}
        return Batch(cast(self.inputs), cast(self.targets), state, self.lengths, masks)
