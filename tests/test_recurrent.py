"""Recurrent layer loop: masks (variable lengths) carry the state through padding, outputs are zero
or the last real output; finite differences through masks; the mask-handling traps."""
from __future__ import annotations

import numpy as np
import pytest

from reference import recurrent
from reference.spec import Batch, SequenceSpec
from tests.recurrent_strategies import adapter, as_stack, build, finite_difference_errors, make_case, verify_case
from verify import engine, render
from verify.report import Report


def _close(a, b):  # one sequence alone vs inside a batch: BLAS may round the matmuls differently
    np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)


def _layer(zero_output: bool, go_backwards: bool = False):
    spec = SequenceSpec("m", 2, 3, 2, cell="lstm")
    case = make_case(spec, 2, batch=3, steps=4)
    p = {k[len("rnn/0/fw/"):]: v for k, v in case.params.items() if k.startswith("rnn/0/fw/")}
    s0 = (case.batch.initial_state["rnn/0/fw"], case.batch.initial_state["rnn/0/fw/c"])
    x = case.batch.inputs
    mask = np.array([[True] * 4, [True, True, False, False], [True, False, False, False]])
    full, full_state, _ = recurrent.forward("lstm", p, x, s0, spec, go_backwards)
    out, state, _ = recurrent.forward("lstm", p, x, s0, spec, go_backwards, mask, zero_output)
    return p, s0, x, full, full_state, out, state


@pytest.mark.parametrize("zero_output", [True, False])
def test_padding_carries_the_state(zero_output):
    p, s0, x, full, full_state, out, state = _layer(zero_output)
    spec = SequenceSpec("m", 2, 3, 2, cell="lstm")
    short, short_state, _ = recurrent.forward("lstm", p, x[1:2, :2], tuple(s[1:2] for s in s0), spec)
    _close(state[0][1], short_state[0][0])   # h after 2 real steps
    _close(state[1][1], short_state[1][0])   # c too
    np.testing.assert_array_equal(out[0], full[0])                  # the full-length sequence is untouched
    _close(out[1, :2], short[0])
    expected_pad = np.zeros((2, 3)) if zero_output else np.repeat(short[0, -1:], 2, axis=0)
    _close(out[1, 2:], expected_pad)


def test_go_backwards_meets_the_padding_first():
    """Keras go_backwards with a mask: padding comes first in processing order (state carried from
    the initial state, output zero), then the real steps last to first."""
    p, s0, x, _, _, out, state = _layer(zero_output=False, go_backwards=True)
    spec = SequenceSpec("m", 2, 3, 2, cell="lstm")
    real, real_state, _ = recurrent.forward("lstm", p, x[2:3, :1], tuple(s[2:3] for s in s0), spec)
    np.testing.assert_array_equal(out[2, :3], np.zeros((3, 3)))
    _close(out[2, 3], real[0, 0])
    _close(state[0][2], real_state[0][0])


@pytest.mark.parametrize("spec", [
    SequenceSpec("lstm_zero", 2, 2, 2, cell="lstm"),
    SequenceSpec("gru_carry_last", 2, 2, 2, cell="gru", zero_output_for_mask=False, return_sequences=False),
    SequenceSpec("bi_stack", 2, 2, 2, cell="lstm", bidirectional=True, num_layers=2, merge_mode="mul"),
    SequenceSpec("bi_final", 2, 2, 2, cell="gru", bidirectional=True, return_sequences=False,
                 zero_output_for_mask=False),
    SequenceSpec("backwards", 2, 2, 2, cell="simple_rnn", go_backwards=True, zero_output_for_mask=False),
], ids=lambda s: s.name)
def test_gradients_through_masks_match_finite_differences(spec):
    errors = finite_difference_errors(make_case(spec, 3, batch=3, steps=4, masked=True))
    assert max(errors.values()) < 1e-8, errors


@pytest.mark.parametrize("framework", ["tensorflow", "torch", "tf1"])
@pytest.mark.parametrize("reference_sees", ["lengths", "no_mask"])
def test_trap_mask_ignored(framework, reference_sees):
    """A framework run on a padded batch with its mask (Keras mask, packed sequence, sequence_length),
    checked against a reference that ignores the mask, must mismatch; with the lengths it agrees."""
    spec = SequenceSpec("m", 2, 3, 2, cell="lstm", forget_bias=1.0 if framework == "tf1" else 0.0)
    case = make_case(spec, 4, batch=3, steps=5, masked=True)
    layered = as_stack(spec)
    model = build(framework, layered, case.params, "float64")
    run = adapter(framework).run(model, layered, case.batch, "float64")
    b = case.batch
    ref_batch = b if reference_sees == "lengths" else Batch(b.inputs, b.targets, b.initial_state)
    checks, _, _ = engine.check_run(layered, ref_batch, "float64",
                                    engine.FrameworkRun(framework, adapter(framework).extract(model), run))
    report = Report("m", "float64", 0, (framework,), {}, tuple(checks))
    if reference_sees == "lengths":
        assert report.verdict == "equivalent", render.table(report)
    else:
        bad = report.find(framework, "output", "rnn/0")  # the (top) recurrent layer's sequence
        assert not bad.ok and bad.first_bad_step is not None and bad.first_bad_step >= 1, render.table(report)
        assert not report.find(framework, "state", "rnn/0/fw").ok, render.table(report)


@pytest.mark.parametrize("claimed", [False, True])
def test_trap_zero_output_for_mask(claimed):
    """Keras's default repeats the last real output over padding; torch and TF1 write zeros."""
    built = SequenceSpec("z", 2, 3, 2, cell="gru", zero_output_for_mask=False)
    case = make_case(built, 5, batch=3, steps=5, masked=True)
    model = build("tensorflow", built, case.params, "float64")
    claimed_spec = SequenceSpec("z", 2, 3, 2, cell="gru", zero_output_for_mask=claimed)
    report = verify_case(type(case)(claimed_spec, case.params, case.batch), "tensorflow", "float64", model=model)
    if not claimed:
        assert report.verdict == "equivalent", render.table(report)
    else:
        assert not report.find("tensorflow", "output", "rnn/0").ok, render.table(report)
        assert report.find("tensorflow", "state", "rnn/0/fw").ok  # the state is carried either way
