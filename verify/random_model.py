"""``compare --model random --seed N``: a layer stack drawn from the seed, so that every adapter path is reachable
from the command line (cells, activations, embeddings, masks, directions, merge modes, dense layers, TF1's LSTM
cells and state layouts), and the report names the configuration so that the same seed replays it."""
from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import numpy as np

from reference import stack
from reference.layers import Dense, Dropout, Embedding, Masking, Recurrent
from reference.spec import Batch, SequenceSpec
from reference.stack import StackSpec, from_sequence
from verify.zoo import ZooModel

NAME = "random"
ACTS = ("tanh", "tanh", "relu", "sigmoid", "linear", "hard_sigmoid", "hard_sigmoid_keras2")
GATE_ACTS = ("sigmoid", "sigmoid", "hard_sigmoid", "hard_sigmoid_keras2")
MERGES = ("concat", "sum", "mul", "ave")
TF1_LSTM_CELLS = ("BasicLSTMCell", "LSTMCell")
# TF1 LSTM state layouts: state_is_tuple -> how the report names it
TF1_STATE_LAYOUTS = {True: "LSTMStateTuple(c, h)", False: "concat([c, h]) (state_is_tuple=False)"}


@dataclass(frozen=True)
class Draw:
    """What one seed draws: the layer stack, whether its batch has variable lengths (trailing padding given
    as ``Batch.lengths``), and the TF1 side's build options (``adapters.tf1_cells.build``'s lstm_cell and
    state_is_tuple; drawn only when TF1 cells hold the stack and it has LSTM layers)."""

    spec: StackSpec
    lengths: bool = False
    tf1_options: tuple[tuple[str, Any], ...] = ()


def _pick(rng: np.random.Generator, options: tuple):
    return options[int(rng.integers(len(options)))]


def _mixed(rng: np.random.Generator) -> StackSpec:
    """[Embedding | Masking]? 1-3 recurrent layers of independent options, Dropout, Dense layers."""
    layers: list = []
    start = _pick(rng, ("plain", "embedding", "masking"))
    if start == "embedding":
        layers.append(Embedding("embedding", int(rng.integers(4, 12)), int(rng.integers(2, 5)),
                                mask_zero=bool(rng.integers(2))))
    elif start == "masking":
        layers.append(Masking("masking", 0.0))
    depth = int(rng.integers(1, 4))
    top_sequences = bool(rng.integers(2))
    for k in range(depth):
        rs = k < depth - 1 or top_sequences
        bidirectional = bool(rng.integers(2))
        last = _pick(rng, ("final", "last_step"))
        layers.append(Recurrent(
            f"rnn{k}", _pick(rng, ("lstm", "gru", "simple_rnn")), int(rng.integers(2, 7)),
            activation=_pick(rng, ACTS), recurrent_activation=_pick(rng, GATE_ACTS),
            reset_after=bool(rng.integers(2)), return_sequences=rs, bidirectional=bidirectional,
            merge_mode=_pick(rng, MERGES), last_output=last,
            go_backwards=not bidirectional and int(rng.integers(4)) == 0,
            # Keras's Bidirectional forces this option; drawing it otherwise would only shut Keras out
            zero_output_for_mask=(rs or last == "last_step") if bidirectional else bool(rng.integers(2))))
        if k < depth - 1 and rng.integers(3) == 0:
            layers.append(Dropout(f"dropout{k}", 0.25))
    if rng.integers(2):
        layers.append(Dense("dense", int(rng.integers(2, 6)), _pick(rng, ("relu", "tanh", "sigmoid", "linear"))))
    softmax = bool(rng.integers(2))
    layers.append(Dense("head", int(rng.integers(2, 4)), "softmax" if softmax else "linear"))
    return StackSpec(NAME, int(rng.integers(1, 4)), tuple(layers), loss="prob_ce" if softmax else "mse",
                     accuracy="argmax" if softmax else "abs_tol")


def _homogeneous(rng: np.random.Generator) -> tuple[StackSpec, bool]:
    """One cell stack with shared options and a linear head (``reference.stack.from_sequence``), with sigmoid
    gates and the GRU reset before its matmul: the only stacks TF1's cells hold, which the mixed draw never
    makes. Returns the stack and whether its batch has variable lengths (TF1's sequence_length path)."""
    num_layers = int(rng.integers(1, 4))
    bidirectional = bool(rng.integers(2))
    go_backwards = num_layers == 1 and not bidirectional and int(rng.integers(4)) == 0
    return_sequences = bool(rng.integers(2))
    last_output = _pick(rng, ("final", "last_step"))
    # a padded batch flipped for go_backwards puts the padding first, which no framework's lengths express
    lengths = not go_backwards and int(rng.integers(3)) == 0
    if bidirectional:  # Keras's Bidirectional forces zero_output_for_mask = its layer returns a sequence
        zero_output = num_layers > 1 or return_sequences or last_output == "last_step"
    else:
        zero_output = bool(rng.integers(2))
    softmax = bool(rng.integers(2))
    seq = SequenceSpec(
        NAME, input_size=int(rng.integers(1, 4)), hidden_size=int(rng.integers(2, 7)),
        output_size=int(rng.integers(2, 4)), cell=_pick(rng, ("lstm", "gru", "simple_rnn")),
        activation=_pick(rng, ACTS), recurrent_activation="sigmoid", reset_after=False, num_layers=num_layers,
        bidirectional=bidirectional, merge_mode=_pick(rng, MERGES), last_output=last_output,
        return_sequences=return_sequences, go_backwards=go_backwards, zero_output_for_mask=zero_output,
        loss="softmax_ce" if softmax else "mse", accuracy="argmax" if softmax else "abs_tol")
    return from_sequence(seq), lengths


def _tf1_options(rng: np.random.Generator, spec: StackSpec, lengths: bool) -> tuple[tuple[str, Any], ...]:
    """TF1's LSTM cell class and state layout, when TF1 cells hold ``spec`` and it has LSTM layers."""
    from adapters import tf1_stack  # its supports() imports no framework
    if tf1_stack.supports(spec, lengths) is not None or not any(l.cell == "lstm" for l in spec.recurrent_layers):
        return ()
    return (("lstm_cell", _pick(rng, TF1_LSTM_CELLS)), ("state_is_tuple", bool(rng.integers(2))))


def draw(seed: int) -> Draw:
    """The configuration of seed ``seed``: one time in three a homogeneous cell stack (which TF1 cells can hold),
    otherwise a mixed stack ([Embedding | Masking]? 1-3 recurrent layers, Dropout, Dense layers)."""
    if seed < 0:
        raise ValueError(f"--model random needs a seed >= 0, got {seed}")
    # The branch and the homogeneous stack come from their own stream, so that a mixed stack is the same
    # for a seed as before the homogeneous branch existed.
    own = np.random.default_rng([seed, 2])
    if own.integers(3) == 0:
        spec, lengths = _homogeneous(own)
    else:
        spec, lengths = _mixed(np.random.default_rng([seed, 1])), False
    tf1 = _tf1_options(own, spec, lengths)
    parts = [_describe(l) for l in spec.layers]
    if lengths:
        parts.append("variable lengths (Batch.lengths, trailing padding)")
    if tf1:
        opts = dict(tf1)
        parts.append(f"TF1 {opts['lstm_cell']}, state {TF1_STATE_LAYOUTS[opts['state_is_tuple']]}")
    description = f"drawn from seed {seed} (replay: compare --model random --seed {seed}): " + "; ".join(parts)
    return Draw(replace(spec, description=description), lengths, tf1)


def draw_spec(seed: int) -> StackSpec:
    """The layer stack of seed ``seed`` (``draw(seed).spec``)."""
    return draw(seed).spec


def _describe(layer: object) -> str:
    if isinstance(layer, Recurrent):
        opts = [layer.cell, str(layer.hidden_size), layer.activation]
        if layer.cell != "simple_rnn":
            opts.append(f"gates {layer.recurrent_activation}")
        if layer.cell == "gru":
            opts.append(f"reset_after={layer.reset_after}")
        if layer.bidirectional:
            opts.append(f"bidirectional {layer.merge_mode} {layer.last_output}")
        if layer.go_backwards:
            opts.append("go_backwards")
        opts += [f"return_sequences={layer.return_sequences}", f"zero_output_for_mask={layer.zero_output_for_mask}"]
        return f"{layer.name} " + " ".join(opts)
    if isinstance(layer, Dense):
        return f"Dense {layer.name} {layer.units} {layer.activation}"
    return f"{type(layer).__name__} {layer.name}"


def make_batch(spec: StackSpec, rng: np.random.Generator, batch: int = 4, steps: int = 5,
               lengths: bool = False) -> Batch:
    """Inputs with trailing padding where a mask is made, targets for the loss, every state non-zero. With
    ``lengths``, the batch says which steps are padding (sequences 1 and 2 end 2 and 1 steps early, the
    others are drawn); the padded inputs stay non-zero, so a framework that reads them is caught."""
    first = spec.layers[0]
    if isinstance(first, Embedding):
        x = rng.integers(1 if first.mask_zero else 0, first.input_dim, size=(batch, steps))
        if first.mask_zero:
            x[1, steps - 2:], x[2, steps - 1:] = 0, 0
    else:
        x = rng.uniform(-1.0, 1.0, size=(batch, steps, spec.input_size))
        if isinstance(first, Masking):
            x[1, steps - 2:], x[2, steps - 1:] = 0.0, 0.0
    lead = (batch, steps) if spec.return_sequences else (batch,)
    if spec.loss in ("prob_ce", "softmax_ce"):
        targets = rng.integers(0, spec.output_size, size=lead)
    else:
        targets = rng.uniform(-1.0, 1.0, size=lead + (spec.output_size,))
    states = {n: rng.uniform(-0.5, 0.5, size=s) for n, s in stack.state_shapes(spec, batch).items()}
    drawn = None
    if lengths:
        drawn = rng.integers(1, steps + 1, size=batch)
        drawn[0], drawn[1], drawn[2] = steps, steps - 2, steps - 1
    return Batch(x, targets, states, drawn)


def entry(seed: int) -> ZooModel:
    """The drawn model as a zoo entry, with every framework that can hold it; the TF1 side's drawn options
    are handed to the TF1 adapter, since the engine builds every framework with build(spec, params, dtype)."""
    from adapters import registry, tf1_stack
    d = draw(seed)
    frameworks = tuple(fw for fw in registry.FRAMEWORKS
                       if registry.get(fw, d.spec).supports(d.spec, d.lengths) is None)
    if "tf1" in frameworks and d.tf1_options:
        tf1_stack.set_build_options(d.spec, **dict(d.tf1_options))
    return ZooModel(d.spec, partial(make_batch, lengths=d.lengths), frameworks)
