"""``compare --model random --seed N``: a layer stack drawn from the seed, so that every adapter path is reachable
from the command line (cells, activations, embeddings, masks, directions, merge modes, dense layers), and the
report names the configuration so that the same seed replays it."""
from __future__ import annotations

import numpy as np

from reference import stack
from reference.layers import Dense, Dropout, Embedding, Masking, Recurrent
from reference.spec import Batch
from reference.stack import StackSpec
from verify.zoo import ZooModel

NAME = "random"
ACTS = ("tanh", "tanh", "relu", "sigmoid", "linear", "hard_sigmoid", "hard_sigmoid_keras2")
GATE_ACTS = ("sigmoid", "sigmoid", "hard_sigmoid", "hard_sigmoid_keras2")
MERGES = ("concat", "sum", "mul", "ave")


def _pick(rng: np.random.Generator, options: tuple):
    return options[int(rng.integers(len(options)))]


def draw_spec(seed: int) -> StackSpec:
    """The configuration of seed ``seed``: [Embedding | Masking]? 1-3 recurrent layers, Dropout, Dense layers."""
    rng = np.random.default_rng([seed, 1])
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
                     accuracy="argmax" if softmax else "abs_tol",
                     description=f"drawn from seed {seed} (replay: compare --model random --seed {seed}): "
                                 + "; ".join(_describe(l) for l in layers))


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
    return f"{type(layer).__name__} {layer.name}"


def make_batch(spec: StackSpec, rng: np.random.Generator, batch: int = 4, steps: int = 5) -> Batch:
    """Inputs with trailing padding where a mask is made, targets for the loss, every state non-zero."""
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
    if spec.loss == "prob_ce":
        targets = rng.integers(0, spec.output_size, size=lead)
    else:
        targets = rng.uniform(-1.0, 1.0, size=lead + (spec.output_size,))
    states = {n: rng.uniform(-0.5, 0.5, size=s) for n, s in stack.state_shapes(spec, batch).items()}
    return Batch(x, targets, states)


def entry(seed: int) -> ZooModel:
    """The drawn model as a zoo entry, with every framework that can hold it."""
    from adapters import registry
    spec = draw_spec(seed)
    frameworks = tuple(fw for fw in ("tensorflow", "torch", "tf1") if registry.get(fw, spec).supports(spec) is None)
    return ZooModel(spec, make_batch, frameworks)
