"""Hypothesis strategies for layer stacks: mixed recurrent layers, embeddings, masking, dropout, dense heads.

Every drawn case has weights uniform per element (so gates differ), non-zero biases, a non-zero initial
value for every state, batch >= 3 and >= 2 steps; Masking and mask_zero inputs carry trailing padding.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st

from reference.layers import Dense, Dropout, Embedding, Masking, Recurrent
from reference.params import init_params
from reference.stack import StackSpec
from verify import random_model


@dataclass(frozen=True)
class StackCase:
    spec: StackSpec
    params: dict
    batch: Batch

    def __repr__(self) -> str:
        return f"StackCase({self.spec!r}, inputs={self.batch.inputs.shape})"


@st.composite
def recurrent_layers(draw: st.DrawFn, name: str, return_sequences: bool, torch_native: bool = False) -> Recurrent:
    cell = draw(st.sampled_from(["lstm", "gru", "simple_rnn"]))
    acts = ["tanh"] if torch_native else ["tanh", "tanh", "relu", "sigmoid"]
    gate_acts = ["sigmoid"] if torch_native else ["sigmoid", "sigmoid", "hard_sigmoid", "hard_sigmoid_keras2"]
    bidirectional = draw(st.booleans())
    return Recurrent(name, cell, draw(st.integers(2, 5)), activation=draw(st.sampled_from(acts)),
                     recurrent_activation=draw(st.sampled_from(gate_acts)), reset_after=draw(st.booleans()),
                     return_sequences=return_sequences, bidirectional=bidirectional,
                     merge_mode=draw(st.sampled_from(["concat", "sum", "mul", "ave"])),
                     last_output=draw(st.sampled_from(["final", "last_step"])),
                     go_backwards=not bidirectional and draw(st.integers(0, 4)) == 0,
                     zero_output_for_mask=draw(st.booleans()))


@st.composite
def stack_specs(draw: st.DrawFn) -> StackSpec:
    """A Sequential-like model: [Embedding | Masking]? then 1-3 recurrent layers (Dropout between, maybe),
    the top one returning its sequence or its last output, then Dense layers (softmax last, or linear)."""
    layers: list = []
    start = draw(st.sampled_from(["plain", "embedding", "masking"]))
    if start == "embedding":
        layers.append(Embedding("embed", draw(st.integers(3, 9)), draw(st.integers(2, 4)),
                                mask_zero=draw(st.booleans())))
    elif start == "masking":
        layers.append(Masking("masking", 0.0))
    depth = draw(st.integers(1, 3))
    top_sequences = draw(st.booleans())
    for k in range(depth):
        layers.append(draw(recurrent_layers(f"rnn{k}", k < depth - 1 or top_sequences)))
        if k < depth - 1 and draw(st.booleans()):
            layers.append(Dropout(f"dropout{k}", 0.3))
    if draw(st.booleans()):
        layers.append(Dense("hidden_dense", draw(st.integers(2, 4)), draw(st.sampled_from(["relu", "tanh",
                                                                                           "sigmoid", "linear"]))))
    softmax = draw(st.booleans())
    layers.append(Dense("head", draw(st.integers(2, 3)), "softmax" if softmax else "linear"))
    return StackSpec("drawn", draw(st.integers(1, 3)), tuple(layers), loss="prob_ce" if softmax else "mse",
                     accuracy="argmax" if softmax else "abs_tol")


def make_stack_case(spec: StackSpec, seed: int, batch: int = 3, steps: int = 4) -> StackCase:
    """Weights, inputs (trailing padding where a mask is made), targets for the loss, every state non-zero:
    the same batch as ``compare --model random`` draws."""
    rng = np.random.default_rng(seed)
    params = init_params(spec, rng)
    return StackCase(spec, params, random_model.make_batch(spec, rng, batch, steps))
