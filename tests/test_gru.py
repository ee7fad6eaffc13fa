"""Reference GRU: hand-worked known answers for both reset placements, finite differences, and the
reset-placement trap against Keras and torch."""
from __future__ import annotations

import math

import numpy as np
import pytest

from reference import gru
from reference.spec import SequenceSpec
from tests.recurrent_strategies import build, check_gate_order_trap, finite_difference_errors, make_case, verify_case
from verify import render


def _one_step(reset_after: bool, recurrent_bias: float | None):
    """x = 1, h0 = 1, H = D = 1. Gate pre-activations: z = ln 3 -> 0.75, r = 0 -> 0.5;
    candidate block: W_h = 0.1, U_h = 0.4."""
    spec = SequenceSpec("ka", 1, 1, 1, cell="gru", reset_after=reset_after)
    kernel = np.array([[math.log(3.0), 0.0, 0.1]])
    p = {"kernel": kernel, "recurrent_kernel": np.array([[0.0, 0.0, 0.4]]), "bias": np.zeros(3)}
    if recurrent_bias is not None:
        p["recurrent_bias"] = np.array([0.0, 0.0, recurrent_bias])
    h, _, _ = gru.step(p, np.array([[1.0]]) @ kernel, (np.ones((1, 1)),), spec)
    return h[0, 0]


def test_known_answer_reset_after():
    # hh = tanh(0.1 + r * (U_h h0 + c_h)) = tanh(0.1 + 0.5 * (0.4 + 0.2)) = tanh(0.4)
    assert _one_step(True, 0.2) == pytest.approx(0.75 * 1 + 0.25 * math.tanh(0.4), abs=1e-15)


def test_known_answer_reset_before():
    # hh = tanh(0.1 + (r * h0) U_h) = tanh(0.1 + 0.5 * 0.4) = tanh(0.3)
    assert _one_step(False, None) == pytest.approx(0.75 * 1 + 0.25 * math.tanh(0.3), abs=1e-15)


def test_placements_differ_once_the_state_is_not_one():
    """With h0 = 1 the two placements coincide without a recurrent bias (r * (U h) = (r * h) U);
    with several units and r differing per unit they do not."""
    spec_a = SequenceSpec("a", 2, 3, 2, cell="gru", reset_after=True, use_bias=False)
    spec_b = SequenceSpec("b", 2, 3, 2, cell="gru", reset_after=False, use_bias=False)
    case = make_case(spec_a, 4)
    from reference import model
    ya = model.evaluate(spec_a, case.params, case.batch)["output"]["prediction"]
    yb = model.evaluate(spec_b, case.params, case.batch)["output"]["prediction"]
    assert np.max(np.abs(ya - yb)) > 1e-3


@pytest.mark.parametrize("spec", [
    SequenceSpec("after", 2, 3, 2, cell="gru", reset_after=True),
    SequenceSpec("before", 2, 3, 2, cell="gru", reset_after=False, activation="relu",
                 recurrent_activation="hard_sigmoid"),
    SequenceSpec("last", 2, 3, 2, cell="gru", return_sequences=False, go_backwards=True, loss="clipped_log_ce",
                 accuracy="argmax"),
], ids=lambda s: s.name)
def test_gradients_match_finite_differences(spec):
    errors = finite_difference_errors(make_case(spec, 3, batch=3, steps=3))
    assert max(errors.values()) < 1e-8, errors


@pytest.mark.parametrize("framework", ["tensorflow", "torch"])
@pytest.mark.parametrize("claimed_after", [True, False])
def test_trap_reset_placement(framework, claimed_after):
    """A reset-after GRU (torch nn.GRU, Keras default) checked as if the reset came before the
    matmul (TF1 GRUCell, Keras reset_after=False) must mismatch, and vice versa agree only when equal."""
    built = SequenceSpec("g", 2, 3, 2, cell="gru", reset_after=True, use_bias=False)
    case = make_case(built, 9)
    model_ = build(framework, built, case.params, "float64")
    claimed = type(case)(SequenceSpec("g", 2, 3, 2, cell="gru", reset_after=claimed_after, use_bias=False),
                         case.params, case.batch)
    report = verify_case(claimed, framework, "float64", model=model_)
    if claimed_after:
        assert report.verdict == "equivalent", render.table(report)
    else:
        assert not report.find(framework, "output", "prediction").ok, render.table(report)


@pytest.mark.parametrize("port", ["correct", "order_ignored"])
@pytest.mark.parametrize("framework, reset_after", [("torch", True), ("tf1", False)])
def test_trap_gate_order(framework, reset_after, port):
    """Canonical z, r, h copied into torch's r, z, n (nn.GRU) or TF1's r, u (GRUCell gates/kernel)
    without permuting: the read-back parameters are wrong in exactly gates z and r, and the outputs
    differ from those the intended weights give."""
    spec = SequenceSpec("order", 2, 3, 2, cell="gru", reset_after=reset_after)
    check_gate_order_trap(make_case(spec, 10), framework, port, (1, 0, 2), {"z", "r"})
