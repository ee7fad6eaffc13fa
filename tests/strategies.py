"""Hypothesis strategies: model configurations, and weights and data that can expose layout bugs.

Weights are drawn from a seeded generator in +-1/sqrt(H): every element, and so every gate, differs;
biases are non-zero; initial states are zero or drawn non-zero; batch >= 1 for the forward
properties and >= 3 wherever batch mixing could hide.
"""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from reference.params import draw_batch, init_params
from reference.spec import SequenceSpec
from tests.recurrent_strategies import Case


@st.composite
def simple_rnn_specs(draw: st.DrawFn) -> SequenceSpec:
    loss = draw(st.sampled_from(["mse", "softmax_ce", "clipped_log_ce"]))
    return SequenceSpec(
        "drawn",
        input_size=draw(st.integers(1, 5)),
        hidden_size=draw(st.integers(1, 6)),
        output_size=draw(st.integers(2, 4)),
        activation=draw(st.sampled_from(["tanh", "relu", "sigmoid"])),
        use_bias=draw(st.booleans()),
        return_sequences=draw(st.booleans()),
        go_backwards=draw(st.booleans()),
        loss=loss,
        accuracy="abs_tol" if loss == "mse" else "argmax",
    )


@st.composite
def cases(draw: st.DrawFn, specs: st.SearchStrategy = simple_rnn_specs(), min_batch: int = 1) -> Case:
    spec = draw(specs)
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    batch = draw(st.integers(min_batch, 8))
    steps = draw(st.integers(1, 12))
    return Case(spec, init_params(spec, rng), draw_batch(spec, rng, batch, steps, draw(st.booleans())))
