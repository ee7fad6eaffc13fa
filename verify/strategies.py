"""Hypothesis strategies for your own property tests: layer stacks, weights and batches drawn as our tests draw them."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st

from reference import stack
from reference.layers import Dense, Dropout, Embedding, Masking, Recurrent
from reference.params import init_params
from reference.spec import ACTIVATIONS as ALL_ACTIVATIONS
from reference.spec import Batch, SequenceSpec
from reference.stack import StackSpec
from verify import random_model

CELLS = ("lstm", "gru", "simple_rnn")
# Repeats weigh the draw: the defaults (tanh, sigmoid gates) come up often, since most real models use them.
ACTIVATIONS = ("tanh", "tanh", "relu", "sigmoid")
GATE_ACTIVATIONS = ("sigmoid", "sigmoid", "hard_sigmoid", "hard_sigmoid_keras2")
MERGE_MODES = ("concat", "sum", "mul", "ave")
DENSE_ACTIVATIONS = ("relu", "tanh", "sigmoid", "linear")
INPUTS = ("plain", "embedding", "masking")
SEEDS = st.integers(0, 2**32 - 1)


@dataclass(frozen=True)
class StackCase:
    """A layer stack, its weights (canonical names, float64) and one batch for it."""

    spec: StackSpec
    params: dict
    batch: Batch

    def __repr__(self) -> str:  # what Hypothesis prints for a falsifying example: the spec and the sizes
        lengths = "" if self.batch.lengths is None else f", lengths={list(map(int, self.batch.lengths))}"
        return f"StackCase({self.spec!r}, inputs={self.batch.inputs.shape}{lengths})"


def _as_stack(spec: StackSpec | SequenceSpec) -> StackSpec:
    return stack.from_sequence(spec) if isinstance(spec, SequenceSpec) else spec


def _masks(spec: StackSpec) -> bool:
    """Whether the inputs carry padding (Masking, or an Embedding with mask_zero)."""
    first = spec.layers[0]
    return isinstance(first, Masking) or (isinstance(first, Embedding) and first.mask_zero)


def _choices(name: str, values: Sequence[str], allowed: Sequence[str]) -> tuple[str, ...]:
    """Checked when the strategy is made, so that a typo fails at once and not in the middle of a draw."""
    values = tuple(values)
    unknown = [v for v in values if v not in allowed]
    if not values or unknown:
        raise ValueError(f"{name}: expected a non-empty subset of {', '.join(dict.fromkeys(allowed))}, got {values}")
    return values


@st.composite
def _recurrent(draw: st.DrawFn, name: str, return_sequences: bool, cells: tuple, activations: tuple,
               gate_activations: tuple, bidirectional: bool, go_backwards: bool) -> Recurrent:
    cell = draw(st.sampled_from(cells))
    bidi = draw(st.booleans()) if bidirectional else False
    return Recurrent(name, cell, draw(st.integers(2, 5)), activation=draw(st.sampled_from(activations)),
                     recurrent_activation=draw(st.sampled_from(gate_activations)), reset_after=draw(st.booleans()),
                     return_sequences=return_sequences, bidirectional=bidi,
                     merge_mode=draw(st.sampled_from(MERGE_MODES)),
                     last_output=draw(st.sampled_from(["final", "last_step"])),
                     go_backwards=go_backwards and not bidi and draw(st.integers(0, 4)) == 0,
                     zero_output_for_mask=draw(st.booleans()))


def recurrent_layers(name: str, return_sequences: bool, *, cells: Sequence[str] = CELLS,
                     activations: Sequence[str] = ACTIVATIONS, gate_activations: Sequence[str] = GATE_ACTIVATIONS,
                     bidirectional: bool = True, go_backwards: bool = True) -> st.SearchStrategy[Recurrent]:
    """One recurrent layer named ``name``: a cell of ``cells`` with 2-5 units, an activation of ``activations``
    and a gate activation of ``gate_activations`` (LSTM and GRU; sampled with the repeats as weights), the GRU
    reset before or after its matmul, bidirectional in about half the draws (with ``bidirectional``) with any merge
    mode and either last-output semantics (Keras's final states or the last step's output), go_backwards in about
    one forward layer in five (with ``go_backwards``), zero_output_for_mask either way. Every drawn layer passes
    ``reference.layers.Recurrent``'s own checks and carries no porting-bug option."""
    return _recurrent(name, return_sequences, **_layer_options(cells, activations, gate_activations, bidirectional,
                                                               go_backwards))


def _layer_options(cells: Sequence[str], activations: Sequence[str], gate_activations: Sequence[str],
                   bidirectional: bool, go_backwards: bool) -> dict:
    return {"cells": _choices("cells", cells, CELLS),
            "activations": _choices("activations", activations, ALL_ACTIVATIONS),
            "gate_activations": _choices("gate_activations", gate_activations, ALL_ACTIVATIONS),
            "bidirectional": bidirectional, "go_backwards": go_backwards}


@st.composite
def _stack_specs(draw: st.DrawFn, layer: dict, inputs: tuple, max_recurrent: int, masks: bool, dropout: bool,
                 dense: bool, heads: tuple) -> StackSpec:
    layers: list = []
    start = draw(st.sampled_from(inputs))
    if start == "embedding":
        layers.append(Embedding("embed", draw(st.integers(3, 9)), draw(st.integers(2, 4)),
                                mask_zero=draw(st.booleans()) if masks else False))
    elif start == "masking":
        layers.append(Masking("masking", 0.0))
    depth = draw(st.integers(1, max_recurrent))
    top_sequences = draw(st.booleans())
    for k in range(depth):
        layers.append(draw(_recurrent(f"rnn{k}", k < depth - 1 or top_sequences, **layer)))
        if dropout and k < depth - 1 and draw(st.booleans()):
            layers.append(Dropout(f"dropout{k}", 0.3))
    if dense and draw(st.booleans()):
        layers.append(Dense("hidden_dense", draw(st.integers(2, 4)), draw(st.sampled_from(DENSE_ACTIVATIONS))))
    softmax = draw(st.booleans()) if len(heads) == 2 else heads[0] == "softmax"
    layers.append(Dense("head", draw(st.integers(2, 3)), "softmax" if softmax else "linear"))
    return StackSpec("drawn", draw(st.integers(1, 3)), tuple(layers), loss="prob_ce" if softmax else "mse",
                     accuracy="argmax" if softmax else "abs_tol")


def stack_specs(*, cells: Sequence[str] = CELLS, activations: Sequence[str] = ACTIVATIONS,
                gate_activations: Sequence[str] = GATE_ACTIVATIONS, inputs: Sequence[str] = INPUTS,
                max_recurrent: int = 3, bidirectional: bool = True, go_backwards: bool = True, masks: bool = True,
                dropout: bool = True, dense: bool = True,
                heads: Sequence[str] = ("softmax", "linear")) -> st.SearchStrategy[StackSpec]:
    """A Sequential-like model, as Keras, torch and the reference build it: an input of ``inputs`` ("plain" float
    features of width 1-3, an "embedding" of 3-9 ids into 2-4 features, with mask_zero in half the draws when
    ``masks``, or "masking": a Masking(0.0) layer, when ``masks``), then 1 to ``max_recurrent`` recurrent layers
    as ``recurrent_layers`` draws them (every layer but the top returns its sequence; the top one its sequence or
    its last output; a Dropout between two of them in half the places, with ``dropout``), a hidden Dense layer
    (2-4 units, relu, tanh, sigmoid or linear) in half the draws (with ``dense``), and a Dense head of 2-3 units
    of ``heads``: "softmax" (loss: cross-entropy of the probabilities, accuracy: argmax) or "linear" (mean squared
    error, accuracy within a tolerance). Every drawn spec passes ``StackSpec``'s checks (unique names, a layer
    order every framework allows)."""
    if max_recurrent < 1:
        raise ValueError(f"max_recurrent must be >= 1, got {max_recurrent}")
    starts = _choices("inputs", inputs, INPUTS)
    if not masks:
        starts = tuple(s for s in starts if s != "masking")
        if not starts:
            raise ValueError(f"inputs {tuple(inputs)} with masks=False leaves no input layer to draw")
    layer = _layer_options(cells, activations, gate_activations, bidirectional, go_backwards)
    return _stack_specs(layer, starts, max_recurrent, masks, dropout, dense,
                        _choices("heads", tuple(dict.fromkeys(heads)), ("softmax", "linear")))


def _gate_blocks_differ(spec: StackSpec, params: dict) -> bool:
    """No element is zero and, in every gate-stacked tensor, no two gate blocks are equal."""
    for name, value in params.items():
        if not np.all(value != 0):
            return False
        gates = stack.gate_blocks(spec, name)
        if len(gates) > 1:
            blocks = np.split(value, len(gates), axis=-1)
            if any(np.array_equal(a, b) for i, a in enumerate(blocks) for b in blocks[i + 1:]):
                return False
    return True


def params(spec: StackSpec | SequenceSpec, scale: float | None = None) -> st.SearchStrategy[dict[str, np.ndarray]]:
    """Weights for ``spec``: every canonical parameter (``reference.stack.param_shapes``), float64, each element
    drawn independently and uniformly in +-``scale`` (default 1/sqrt of the widest recurrent layer), from a drawn
    seed. Guaranteed (a draw that breaks it is rejected): no element is zero, so every bias is non-zero, and in
    every gate-stacked tensor (kernel, recurrent_kernel, bias, recurrent_bias of an LSTM or GRU) no two gate
    blocks are equal, so that weights in the wrong gate change the result. A ``SequenceSpec`` is taken as the
    layer stack it describes (its parameter names are the same)."""
    spec = _as_stack(spec)
    if scale is not None and not scale > 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    return SEEDS.map(lambda seed: init_params(spec, np.random.default_rng(seed), scale)).filter(
        lambda p: _gate_blocks_differ(spec, p))


def _steps_range(min_steps: int, max_steps: int, padded: bool) -> tuple[int, int]:
    """Padded sequences end 1 and 2 steps early: 3 steps keep a real step in each."""
    low = max(min_steps, 3) if padded else min_steps
    if min_steps < 2 or max_steps < low:
        raise ValueError(f"steps: need 2 <= min_steps <= max_steps (and max_steps >= 3 where sequences are padded); "
                         f"got min_steps={min_steps}, max_steps={max_steps}")
    return low, max_steps


def _check_batch(min_batch: int, max_batch: int) -> None:
    if not 3 <= min_batch <= max_batch:
        raise ValueError(f"batch: need 3 <= min_batch <= max_batch (a batch of 1 or 2 hides batch-mixing bugs, and "
                         f"sequences 1 and 2 carry the padding); got min_batch={min_batch}, max_batch={max_batch}")


def make_case(spec: StackSpec | SequenceSpec, seed: int, batch: int = 3, steps: int = 4,
              lengths: bool = False) -> StackCase:
    """The case of one seed: weights as ``params`` draws them, then a batch as ``batches`` draws it, both from
    ``numpy.random.default_rng(seed)`` (the same batch as ``compare --model random``); not checked against
    ``params``'s guarantee, which a float64 uniform draw breaks with probability below 1e-15. Padded sequences
    (``lengths``, Masking, mask_zero) need batch >= 3 and steps >= 3 (ValueError otherwise)."""
    spec = _as_stack(spec)
    if (lengths or _masks(spec)) and (batch < 3 or steps < 3):
        raise ValueError(f"a padded batch needs batch >= 3 and steps >= 3 (sequences 1 and 2 end early), "
                         f"got batch={batch}, steps={steps}")
    rng = np.random.default_rng(seed)
    weights = init_params(spec, rng)
    return StackCase(spec, weights, random_model.make_batch(spec, rng, batch, steps, lengths))


def batches(spec: StackSpec | SequenceSpec, *, min_batch: int = 3, max_batch: int = 5, min_steps: int = 2,
            max_steps: int = 6, lengths: bool | None = False) -> st.SearchStrategy[Batch]:
    """A batch for ``spec``: ``min_batch``-``max_batch`` sequences (at least 3) of ``min_steps``-``max_steps``
    steps (at least 2; at least 3 where sequences are padded), inputs uniform in +-1 (integer ids of the whole
    vocabulary, or from 1 with mask_zero, for an Embedding), targets of the spec's loss (class ids for softmax,
    uniform values otherwise), and every initial state of every layer and direction uniform in +-0.5 (never zero).
    With Masking or mask_zero, sequences 1 and 2 end 2 and 1 steps early (trailing zeros), sequence 0 is whole.
    ``lengths``: True gives every batch ``Batch.lengths`` (sequence 0 whole, 1 and 2 two and one steps short, the
    rest drawn in 1..steps; the padded inputs stay non-zero, so code that reads them is caught), None in about
    half the draws, False never. torch and TF1 refuse lengths with go_backwards; the reference runs them as Keras."""
    spec = _as_stack(spec)
    _check_batch(min_batch, max_batch)
    _steps_range(min_steps, max_steps, _masks(spec) or lengths is not False)

    @st.composite
    def draw_batch(draw: st.DrawFn) -> Batch:
        padded = draw(st.booleans()) if lengths is None else lengths
        low, high = _steps_range(min_steps, max_steps, _masks(spec) or padded)
        size, steps, seed = draw(st.integers(min_batch, max_batch)), draw(st.integers(low, high)), draw(SEEDS)
        return random_model.make_batch(spec, np.random.default_rng(seed), size, steps, padded)
    return draw_batch()


def cases(specs: st.SearchStrategy[StackSpec] | None = None, *, min_batch: int = 3, max_batch: int = 5,
          min_steps: int = 2, max_steps: int = 6, lengths: bool | None = False) -> st.SearchStrategy[StackCase]:
    """A spec from ``specs`` (default ``stack_specs()``), its weights with ``params``'s guarantees and a batch with
    ``batches``'s, drawn together from one seed as ``make_case`` makes them (batch, steps and ``lengths`` as in
    ``batches``; ``max_steps`` >= 3, since a drawn spec may pad its sequences). Shrinking moves towards fewer
    layers, smaller sizes and seed 0, never towards zero weights."""
    specs = stack_specs() if specs is None else specs
    _check_batch(min_batch, max_batch)
    _steps_range(min_steps, max_steps, True)  # a drawn spec may pad its sequences

    @st.composite
    def draw_case(draw: st.DrawFn) -> StackCase:
        spec = _as_stack(draw(specs))
        padded = draw(st.booleans()) if lengths is None else lengths
        low, high = _steps_range(min_steps, max_steps, _masks(spec) or padded)
        return make_case(spec, draw(SEEDS), draw(st.integers(min_batch, max_batch)), draw(st.integers(low, high)),
                         padded)
    return draw_case().filter(lambda c: _gate_blocks_differ(c.spec, c.params))
