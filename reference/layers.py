"""The standard layers a model description is made of: frozen options, no weights.

Each layer carries a ``name``, the prefix of its canonical parameters (``lstm_1/fw/kernel``,
``head/kernel``); shapes come from ``reference.stack.param_shapes``. The options are those Keras,
torch and TF1 share (see ``reference.spec.SequenceSpec`` for what each recurrent option means).

* ``Embedding(input_dim V, output_dim E)``: integer ids (B, T) -> rows of ``embeddings`` (V, E);
  ``mask_zero`` masks the steps whose id is 0 (Keras).
* ``Masking(mask_value)``: masks the steps whose features all equal ``mask_value`` and multiplies the
  inputs by the mask (Keras zeroes masked steps).
* ``Dropout(rate)``: x * mask / (1 - rate) with the keep mask a batch gives it (``Batch.dropout_masks``,
  training); the identity without one (inference).
* ``Dense(units, activation)``: ``act(x @ kernel + bias)`` over the last axis, so on a sequence it
  is applied at every step (Keras ``TimeDistributed(Dense)`` and a plain ``Dense`` alike).
* ``Recurrent``: one recurrent layer (SimpleRNN, LSTM, GRU), optionally bidirectional, returning its
  sequence or its last output; the options of ``SequenceSpec`` per layer.

``Recurrent`` also has options that no framework has, used to model porting bugs
(``verify/hypotheses.py``); their defaults are the correct layer, and no adapter builds them:

* ``gate_activations``: ``(gate, activation)`` pairs overriding one gate's activation (LSTM gates
  i, f, g, o; GRU z, r, h): ``(("o", "tanh"),)`` puts the output gate through tanh.
* ``bw_order``: how the backward direction of a bidirectional layer meets time. ``reversed`` (correct):
  it runs over the reversed sequence and its outputs are reversed back into input order;
  ``forward``: it runs forward in time, outputs as produced; ``not_realigned``: it runs over the
  reversed sequence, its outputs left in processing order; ``input_reversed_twice``: it runs forward
  in time and its outputs are reversed as if it had not.
* ``output_shift``: 1 makes each step output the state it started from (the initial h at step 0),
  so the outputs lag one step behind; 0 (correct) outputs the new state.
* ``time_major``: the layer reads its (B, T, D) input as (T, B, D), as torch's recurrent layers do
  without ``batch_first=True``: the recurrence runs along the batch axis, from zero states (one per
  step index), and its output is read back as (B, T, .). The given initial states are unused.
* ``last_output="first_step"``: without ``return_sequences`` the layer returns its outputs at step 0
  (torch's ``out[:, 0]`` where ``out[:, -1]`` was meant), for one direction or both.
"""
from __future__ import annotations

from dataclasses import dataclass

from reference.layout import GATES
from reference.spec import ACTIVATIONS, CELLS, LAST_OUTPUTS, MERGE_MODES

DENSE_ACTIVATIONS = ("linear", "relu", "tanh", "sigmoid", "softmax")
# The gate that takes ``activation`` rather than ``recurrent_activation``: the candidate.
CANDIDATE = {"lstm": "g", "gru": "h"}
BW_ORDERS = ("reversed", "forward", "not_realigned", "input_reversed_twice")
LAYER_LAST_OUTPUTS = LAST_OUTPUTS + ("first_step",)  # the third one models a porting bug


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
    # porting-bug options (see the module docstring): the defaults are the correct layer
    gate_activations: tuple[tuple[str, str], ...] = ()
    bw_order: str = "reversed"
    output_shift: int = 0
    time_major: bool = False
    kind = "Recurrent"

    def __post_init__(self) -> None:
        _one_of(self.cell, CELLS, "cell", self.name)
        _one_of(self.activation, ACTIVATIONS, "activation", self.name)
        _one_of(self.recurrent_activation, ACTIVATIONS, "recurrent_activation", self.name)
        _one_of(self.merge_mode, MERGE_MODES, "merge_mode", self.name)
        _one_of(self.last_output, LAYER_LAST_OUTPUTS, "last_output", self.name)
        _positive(self.hidden_size, "hidden_size", self.name)
        if self.proj_size < 0:
            raise ValueError(f"layer {self.name}: proj_size must be >= 0, got {self.proj_size}")
        if self.cell != "lstm" and (self.use_peepholes or self.proj_size or self.forget_bias):
            raise ValueError(f"layer {self.name}: use_peepholes, proj_size and forget_bias are LSTM options; "
                             f"cell is {self.cell!r}")
        if self.go_backwards and self.bidirectional:
            raise ValueError(f"layer {self.name}: go_backwards applies to a forward layer; "
                             "use bidirectional for a backward direction")
        gates = [g for g, _ in self.gate_activations]
        for gate, act in self.gate_activations:
            _one_of(gate, GATES[self.cell], f"{self.cell} gate", self.name)
            _one_of(act, ACTIVATIONS, "gate activation", self.name)
        if len(set(gates)) != len(gates):
            raise ValueError(f"layer {self.name}: gate_activations names a gate twice: {self.gate_activations}")
        _one_of(self.bw_order, BW_ORDERS, "bw_order", self.name)
        if self.bw_order != "reversed" and not self.bidirectional:
            raise ValueError(f"layer {self.name}: bw_order {self.bw_order!r} needs a bidirectional layer")
        _one_of(self.output_shift, (0, 1), "output_shift", self.name)

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


def gate_activation(spec: object, gate: str) -> str:
    """The activation of ``gate`` in a layer or ``SequenceSpec`` (which has no overrides): the candidate
    (LSTM g, GRU h) takes ``activation``, the other gates ``recurrent_activation``."""
    for g, act in getattr(spec, "gate_activations", ()):
        if g == gate:
            return act
    return spec.activation if gate == CANDIDATE.get(spec.cell) else spec.recurrent_activation


Layer = Embedding | Masking | Dropout | Dense | Recurrent
WEIGHTED = (Embedding, Dense, Recurrent)


BUG_DEFAULTS = {"gate_activations": (), "bw_order": "reversed", "output_shift": 0, "time_major": False}


def check_buildable(layers: tuple, framework: str) -> None:
    """Refuse a layer carrying a porting-bug option: no framework layer computes it, and building without it
    would silently verify another model than the one described."""
    for layer in layers:
        for option, default in BUG_DEFAULTS.items():
            if getattr(layer, option, default) != default:
                raise ValueError(f"layer {layer.name}: {option}={getattr(layer, option)!r} models a porting bug "
                                 f"(verify/hypotheses.py); {framework} cannot build it")
        if getattr(layer, "last_output", "final") == "first_step":
            raise ValueError(f"layer {layer.name}: last_output='first_step' models a porting bug; "
                             f"{framework} cannot build it")
