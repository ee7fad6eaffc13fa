"""Greedy decoding in low precision: a near-tie decision that flips is reported, not hidden; a decision
far from a tie that differs is a mismatch."""
from __future__ import annotations

import numpy as np

from reference import seq2seq
from verify import tolerance
from verify.training import _decisions
from tests.seq2seq_cases import small_case, small_spec


def _ref_and_allowance():
    spec = small_spec("attention")
    params, batch = small_case(spec, seed=9)
    ref = seq2seq.evaluate(spec, params, batch)
    pred = ref["output"]["prediction"]
    return ref, pred, tolerance.for_tensor(pred, "float32", 1e-7)


def test_same_decisions_pass_without_a_note() -> None:
    ref, pred, allow = _ref_and_allowance()
    check, note = _decisions("torch", np.argmax(pred, -1).astype(float), ref, allow, "float32")
    assert check.ok and note is None


def test_a_flip_far_from_a_tie_is_a_mismatch_at_its_step() -> None:
    ref, pred, allow = _ref_and_allowance()
    decoded = np.argmax(pred, -1)
    decoded[2, 1] = np.argsort(pred[2, 1])[-2]  # the runner-up, which the margin says cannot win
    check, note = _decisions("torch", decoded.astype(float), ref, allow, "float32")
    assert not check.ok and check.first_bad_step == 1 and check.n_bad == 1
    assert note is not None and "1 not near a tie" in note


def test_a_flip_at_a_near_tie_is_allowed_and_reported() -> None:
    ref, pred, allow = _ref_and_allowance()
    pred = pred.copy()
    top = np.argsort(pred[1, 2])[-2:]
    pred[1, 2, top[0]] = pred[1, 2, top[1]] - 1e-9  # make the decision a near tie
    ref = {**ref, "output": {**ref["output"], "prediction": pred}}
    decoded = np.argmax(pred, -1)
    decoded[1, 2] = top[0]
    check, note = _decisions("torch", decoded.astype(float), ref, allow, "float32")
    assert check.ok and note is not None and "0 not near a tie" in note and "sample 1, output step 2" in note
