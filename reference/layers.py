"""The standard layers a model description is made of: frozen options, no weights.

Each layer carries a ``name``, the prefix of its canonical parameters (``lstm_1/fw/kernel``,
``head/kernel``); shapes come from ``reference.stack.param_shapes``. The options are those Keras,
torch and TF1 share (see ``reference.spec.SequenceSpec`` for what each recurrent option means).

* ``Embedding(input_dim V, output_dim E)``: integer ids (B, T) -> rows of ``embeddings`` (V, E);
  ``mask_zero`` masks the steps whose id is 0 (Keras).
* ``Masking(mask_value)``: masks the steps whose features all equal ``mask_value`` and multiplies the
  inputs by the mask (Keras zeroes masked steps).
* ``Dropout(rate)``: the identity at inference.
* ``Dense(units, activation)``: ``act(x @ kernel + bias)`` over the last axis, so on a sequence it
  is applied at every step (Keras ``TimeDistributed(Dense)`` and a plain ``Dense`` alike).
* ``Recurrent``: one recurrent layer (SimpleRNN, LSTM, GRU), optionally bidirectional, returning its
  sequence or its last output; the options of ``SequenceSpec`` per layer.
"""
from __future__ import annotations

from dataclasses import dataclass

from reference.spec import ACTIVATIONS, CELLS, LAST_OUTPUTS, MERGE_MODES

DENSE_ACTIVATIONS = ("linear", "relu", "tanh", "sigmoid", "softmax")


def _one_of(value: object, allowed: tuple, what: str, layer: str) -> None:
    if value not in allowed:
        raise ValueError(f"layer {layer}: unknown {what} {value!r}; expected one of {', '.join(map(str, allowed))}")


def _positive(value: int, what: str, layer: str) -> None:
    if value < 1:
        raise ValueError(f"layer {layer}: {what} must be >= 1, got {value}")


@dataclass(frozen=True)
class Embedding:
    name: str
    input_dim: int
    output_dim: int
    mask_zero: bool = False
    kind = "Embedding"

    def __post_init__(self) -> None:
        _positive(self.input_dim, "input_dim", self.name)
        _positive(self.output_dim, "output_dim", self.name)


@dataclass(frozen=True)
class Masking:
    name: str
    mask_value: float = 0.0
    kind = "Masking"


@dataclass(frozen=True)
class Dropout:
    name: str
    rate: float = 0.0
    kind = "Dropout"


@dataclass(frozen=True)
class Dense:
    name: str
    units: int
    activation: str = "linear"
    use_bias: bool = True
    kind = "Dense"

    def __post_init__(self) -> None:
        _positive(self.units, "units", self.name)
        _one_of(self.activation, DENSE_ACTIVATIONS, "Dense activation", self.name)


@dataclass(frozen=True)
class Recurrent:
    name: str
    cell: str
    hidden_size: int
    activation: str = "tanh"
    recurrent_activation: str = "sigmoid"
    use_bias: bool = True
    reset_after: bool = True
    forget_bias: float = 0.0
    use_peepholes: bool = False
    proj_size: int = 0
    return_sequences: bool = True
    go_backwards: bool = False
    bidirectional: bool = False
    merge_mode: str = "concat"
    last_output: str = "final"
    zero_output_for_mask: bool = True
    kind = "Recurrent"

    def __post_init__(self) -> None:
        _one_of(self.cell, CELLS, "cell", self.name)
        _one_of(self.activation, ACTIVATIONS, "activation", self.name)
        _one_of(self.recurrent_activation, ACTIVATIONS, "recurrent_activation", self.name)
        _one_of(self.merge_mode, MERGE_MODES, "merge_mode", self.name)
        _one_of(self.last_output, LAST_OUTPUTS, "last_output", self.name)
        _positive(self.hidden_size, "hidden_size", self.name)
        if self.proj_size < 0:
            raise ValueError(f"layer {self.name}: proj_size must be >= 0, got {self.proj_size}")
        if self.cell != "lstm" and (self.use_peepholes or self.proj_size or self.forget_bias):
            raise ValueError(f"layer {self.name}: use_peepholes, proj_size and forget_bias are LSTM options; "
                             f"cell is {self.cell!r}")
        if self.go_backwards and self.bidirectional:
            raise ValueError(f"layer {self.name}: go_backwards applies to a forward layer; "
                             "use bidirectional for a backward direction")

    @property
    def directions(self) -> tuple[str, ...]:
        return ("fw", "bw") if self.bidirectional else ("fw",)

    @property
    def output_width(self) -> int:
        """Width of one direction's output (the projection size when there is one)."""
        return self.proj_size or self.hidden_size

    @property
    def merged_width(self) -> int:
        return self.output_width * (2 if self.bidirectional and self.merge_mode == "concat" else 1)


Layer = Embedding | Masking | Dropout | Dense | Recurrent
WEIGHTED = (Embedding, Dense, Recurrent)
