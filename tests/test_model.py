"""Reference model: stacked and bidirectional layers, merge modes, last-output semantics, initial
states, finite differences, and the bidirectional last-output trap."""
from __future__ import annotations

import numpy as np
import pytest

from reference import model, recurrent
from reference.spec import Batch, SequenceSpec
from tests.recurrent_strategies import build, finite_difference_errors, make_case, verify_case
from verify import render


@pytest.mark.parametrize("spec", [
    SequenceSpec("lstm_bi_mul", 2, 2, 2, cell="lstm", num_layers=2, bidirectional=True, merge_mode="mul"),
    SequenceSpec("gru_bi_ave_final", 2, 2, 2, cell="gru", bidirectional=True, merge_mode="ave", return_sequences=False),
    SequenceSpec("rnn_bi_sum_last", 2, 2, 2, bidirectional=True, merge_mode="sum", return_sequences=False,
                 last_output="last_step", loss="softmax_ce", accuracy="argmax"),
    SequenceSpec("lstm_proj_stack", 2, 3, 2, cell="lstm", num_layers=2, proj_size=2, bidirectional=True,
                 return_sequences=False),
], ids=lambda s: s.name)
def test_gradients_match_finite_differences(spec):
    errors = finite_difference_errors(make_case(spec, 3, batch=3, steps=3))
    assert max(errors.values()) < 1e-8, errors


@pytest.mark.parametrize("mode", ["concat", "sum", "mul", "ave"])
def test_bidirectional_is_forward_and_reversed_backward_merged(mode):
    """Composition by hand: the bw direction is a forward run over the reversed inputs, reversed back."""
    spec = SequenceSpec("bi", 2, 3, 2, cell="lstm", bidirectional=True, merge_mode=mode)
    case = make_case(spec, 2)
    res = model.evaluate(spec, case.params, case.batch)
    sub = lambda d: {k[len(f"rnn/0/{d}/"):]: v for k, v in case.params.items() if k.startswith(f"rnn/0/{d}/")}  # noqa
    s0 = lambda d: (case.batch.initial_state[f"rnn/0/{d}"], case.batch.initial_state[f"rnn/0/{d}/c"])  # noqa
    fw, _, _ = recurrent.forward("lstm", sub("fw"), case.batch.inputs, s0("fw"), spec)
    bw, _, _ = recurrent.forward("lstm", sub("bw"), np.ascontiguousarray(case.batch.inputs[:, ::-1]), s0("bw"), spec)
    bw = bw[:, ::-1]
    expected = {"concat": np.concatenate([fw, bw], -1), "sum": fw + bw, "mul": fw * bw, "ave": (fw + bw) / 2}[mode]
    np.testing.assert_allclose(res["output"]["hidden"], expected, rtol=1e-14, atol=1e-15)


def test_last_output_semantics():
    """final = [fw after all steps, bw after the whole reversed sequence]; last_step = merged[:, -1],
    whose bw half has seen only the last input."""
    base = dict(input_size=2, hidden_size=3, output_size=2, cell="gru", bidirectional=True, return_sequences=False)
    spec_f = SequenceSpec("f", **base, last_output="final")
    spec_l = SequenceSpec("l", **base, last_output="last_step")
    case = make_case(spec_f, 6)
    seq = model.evaluate(SequenceSpec("s", **{**base, "return_sequences": True}), case.params,
                         Batch(case.batch.inputs, np.zeros((3, 4, 2)), case.batch.initial_state))["output"]["hidden"]
    from reference import stack
    head_in = {s.last_output: stack.forward(stack.from_sequence(s), case.params, case.batch)[0]["output"]["rnn/0"]
               for s in (spec_f, spec_l)}
    np.testing.assert_array_equal(head_in["last_step"], seq[:, -1])
    np.testing.assert_array_equal(head_in["final"], np.concatenate([seq[:, -1, :3], seq[:, 0, 3:]], -1))
    res = model.evaluate(spec_f, case.params, case.batch)
    np.testing.assert_array_equal(res["state"]["rnn/0/bw"], seq[:, 0, 3:])  # final bw state = bw output at t=0


@pytest.mark.parametrize("framework", ["tensorflow", "torch"])
@pytest.mark.parametrize("claimed", ["final", "last_step"])
def test_trap_bidirectional_last_output(framework, claimed):
    """Keras Bidirectional(return_sequences=False) ("final") checked as if it gave the merged output
    at the last step (TF1 static_bidirectional_rnn(...)[0][-1], torch out[:, -1]) must mismatch."""
    base = dict(input_size=2, hidden_size=3, output_size=2, cell="lstm", bidirectional=True, return_sequences=False)
    built = SequenceSpec("b", **base, last_output="final")
    case = make_case(built, 10, steps=5)
    model_ = build(framework, built, case.params, "float64")
    report = verify_case(type(case)(SequenceSpec("b", **base, last_output=claimed), case.params, case.batch),
                         framework, "float64", model=model_)
    if claimed == "final":
        assert report.verdict == "equivalent", render.table(report)
    else:
        assert not report.find(framework, "output", "prediction").ok, render.table(report)


def test_spec_validation():
    with pytest.raises(ValueError, match="go_backwards"):
        SequenceSpec("x", 1, 1, 1, cell="lstm", go_backwards=True, bidirectional=True)
    with pytest.raises(ValueError, match="LSTM options"):
        SequenceSpec("x", 1, 1, 1, cell="gru", use_peepholes=True)
    with pytest.raises(ValueError, match="merge_mode"):
        SequenceSpec("x", 1, 1, 1, bidirectional=True, merge_mode="max")
