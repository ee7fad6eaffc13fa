"""torch (the stack adapter, adapters/torch_stack.py) for nn.RNN/nn.LSTM/nn.GRU (and the LoopStack for options
torch lacks), the recurrent layers of a drawn SequenceSpec fused into one module where torch can: build/extract
both directions, Hypothesis properties in float64 and float32, and torch's two-bias traps."""
from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import given, settings

from adapters import torch_nn, torch_stack
from reference.spec import SequenceSpec
from tests.recurrent_strategies import (build, cases, float64_figures, fused_groups, make_case, record, recurrent_specs,
                                        supports, verify_case)
from verify import render

torch = pytest.importorskip("torch")

EXAMPLES = int(os.environ.get("VERIFY_EXAMPLES", "0"))


def _torch_specs():
    return recurrent_specs().filter(lambda s: supports("torch")(s) is None)


@settings(**({"max_examples": EXAMPLES} if EXAMPLES else {}))
@given(cases(_torch_specs(), supports("torch")))
def test_float64_matches_reference(case):
    report = verify_case(case, "torch", "float64")
    assert report.verdict == "equivalent", render.table(report)
    figures = float64_figures(report)
    record("float64", masked=case.batch.lengths is not None, framework="torch", native=fused_groups(case.spec) is not None and torch_nn.is_native(case.spec), spec=repr(case.spec), **figures)
    assert figures["norm_rel"] <= 1e-12, (figures, render.table(report))


@settings(**({"max_examples": EXAMPLES} if EXAMPLES else {}))
@given(cases(_torch_specs(), supports("torch")))
def test_float32_no_false_alarm(case):
    report = verify_case(case, "torch", "float32")
    record("float32", framework="torch", verdict=report.verdict)
    assert report.verdict == "equivalent", render.table(report)


@pytest.mark.parametrize("spec", [
    SequenceSpec("lstm_proj", 3, 4, 2, cell="lstm", proj_size=2, num_layers=2, bidirectional=True),
    SequenceSpec("gru", 3, 4, 2, cell="gru", num_layers=2),
    SequenceSpec("gru_loop", 3, 4, 2, cell="gru", reset_after=False, bidirectional=True, merge_mode="mul"),
], ids=lambda s: s.name)
def test_extract_reads_back_what_build_wrote(spec):
    case = make_case(spec, 7)
    got = torch_stack.extract(build("torch", spec, case.params, "float64"))
    assert list(got) == list(case.params)
    for name, value in case.params.items():
        np.testing.assert_array_equal(got[name], value, err_msg=name)


def test_native_layers_are_used_where_torch_has_them():
    assert torch_nn.is_native(SequenceSpec("a", 2, 3, 2, cell="lstm", proj_size=2, num_layers=2, bidirectional=True))
    assert torch_nn.is_native(SequenceSpec("b", 2, 3, 2, cell="gru", reset_after=True))
    assert not torch_nn.is_native(SequenceSpec("c", 2, 3, 2, cell="gru", reset_after=False))
    assert not torch_nn.is_native(SequenceSpec("d", 2, 3, 2, cell="lstm", recurrent_activation="hard_sigmoid"))


def test_torch_hardsigmoid_backward_rounds_through_float32():
    """Framework fact (torch 2.13): F.hardsigmoid's gradient in float64 is float32(1/6), not 1/6.

    The adapter therefore writes the hard sigmoid as clamp(x + 3, 0, 6) / 6. If this test starts
    failing, torch has fixed it and the adapter could use F.hardsigmoid again.
    """
    z = torch.tensor([0.5], dtype=torch.float64, requires_grad=True)
    torch.nn.functional.hardsigmoid(z).sum().backward()
    assert z.grad.item() == float(np.float32(1 / 6)) != 1 / 6


# ---- traps: torch's two biases ---------------------------------------------------------------

@pytest.mark.parametrize("port", ["correct", "bias_in_both"])
def test_trap_lstm_bias_copied_into_both_torch_biases(port):
    """A port that writes the one Keras/canonical LSTM bias into bias_ih AND bias_hh doubles it."""
    spec = SequenceSpec("lstm", 3, 4, 2, cell="lstm")
    case = make_case(spec, 11)
    model = build("torch", spec, case.params, "float64")
    if port == "bias_in_both":
        rnn = model.owner(model.groups[0])  # the nn.LSTM, its bias split over bias_ih and bias_hh
        with torch.no_grad():
            full = rnn.bias_ih_l0 + rnn.bias_hh_l0  # the canonical bias, written into both
            rnn.bias_ih_l0.copy_(full)
            rnn.bias_hh_l0.copy_(full)
    read_back = verify_case(case, "torch", "float64", model=model)
    outputs = verify_case(case, "torch", "float64", model=model, intended=True)
    if port == "correct":
        assert read_back.verdict == outputs.verdict == "equivalent", render.table(outputs)
    else:
        assert not read_back.find("torch", "parameter", "rnn/0/fw/bias").ok, render.table(read_back)
        assert not outputs.find("torch", "output", "prediction").ok, render.table(outputs)


@pytest.mark.parametrize("port", ["correct", "recurrent_bias_folded"])
def test_trap_gru_recurrent_bias_folded_into_input_bias(port):
    """torch's GRU bias_hh for the n gate sits inside r * (W_hn h + b_hn): a port that adds it into
    bias_ih (as for an LSTM, where the two only ever appear as a sum) computes another function."""
    spec = SequenceSpec("gru", 3, 4, 2, cell="gru", reset_after=True)
    case = make_case(spec, 12)
    model = build("torch", spec, case.params, "float64")
    if port == "recurrent_bias_folded":
        rnn = model.owner(model.groups[0])  # the nn.GRU
        with torch.no_grad():
            rnn.bias_ih_l0.add_(rnn.bias_hh_l0)
            rnn.bias_hh_l0.zero_()
    report = verify_case(case, "torch", "float64", model=model, intended=True)
    if port == "correct":
        assert report.verdict == "equivalent", render.table(report)
    else:
        assert not report.find("torch", "output", "prediction").ok, render.table(report)
        assert "h" in report.find("torch", "gradient", "rnn/0/fw/recurrent_bias").bad_gates, render.table(report)
