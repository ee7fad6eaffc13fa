"""Keras 3 (the stack adapter, adapters/keras_stack.py) for LSTM, GRU, simple RNN, stacked and bidirectional
layers drawn as SequenceSpecs: build/extract both directions, and Hypothesis properties against the float64
reference in float64 and float32."""
from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import given, settings

from adapters import keras_stack
from reference.spec import SequenceSpec
from tests.recurrent_strategies import (as_stack, cases, float64_figures, make_case, record, recurrent_specs, supports,
                                        top_output, verify_case)
from verify import render

pytest.importorskip("tensorflow")

EXAMPLES = int(os.environ.get("VERIFY_EXAMPLES", "0"))


def _keras_specs():
    return recurrent_specs().filter(lambda s: supports("tensorflow")(s) is None)


@settings(**({"max_examples": EXAMPLES} if EXAMPLES else {}))
@given(cases(_keras_specs(), supports("tensorflow")))
def test_float64_matches_reference(case):
    report = verify_case(case, "tensorflow", "float64")
    assert report.verdict == "equivalent", render.table(report)
    figures = float64_figures(report)
    record("float64", masked=case.batch.lengths is not None, framework="tensorflow", spec=repr(case.spec), **figures)
    assert figures["norm_rel"] <= 1e-12, (figures, render.table(report))


@settings(**({"max_examples": EXAMPLES} if EXAMPLES else {}))
@given(cases(_keras_specs(), supports("tensorflow")))
def test_float32_no_false_alarm(case):
    report = verify_case(case, "tensorflow", "float32")
    record("float32", framework="tensorflow", verdict=report.verdict)
    assert report.verdict == "equivalent", render.table(report)


@pytest.mark.parametrize("spec", [
    SequenceSpec("lstm2bi", 3, 4, 2, cell="lstm", num_layers=2, bidirectional=True, merge_mode="sum"),
    SequenceSpec("gru_after", 3, 4, 2, cell="gru", reset_after=True),
    SequenceSpec("gru_before", 3, 4, 2, cell="gru", reset_after=False),
], ids=lambda s: s.name)
def test_extract_reads_back_what_build_wrote(spec):
    case = make_case(spec, 7)
    model = keras_stack.build(as_stack(spec), case.params, "float64")
    got = keras_stack.extract(model)
    assert list(got) == list(case.params)
    for name, value in case.params.items():
        np.testing.assert_array_equal(got[name], value, err_msg=name)


def test_extract_a_users_sequential_model():
    """A Sequential built the user's way (stacked LSTMs, Keras's own initialisers) goes through extract,
    and the reference on the extracted weights matches what Keras computes."""
    from adapters.tf_import import import_tf
    _, keras = import_tf()
    spec = SequenceSpec("user", 2, 3, 2, cell="lstm", num_layers=2, return_sequences=True)
    model = keras.Sequential([keras.Input((None, 2), dtype="float64"),
                              keras.layers.LSTM(3, return_sequences=True, return_state=False, dtype="float64"),
                              keras.layers.LSTM(3, return_sequences=True, dtype="float64"),
                              keras.layers.Dense(2, dtype="float64")])
    case = make_case(spec, 3)
    params = keras_stack.extract(model, as_stack(spec))
    assert set(params) == set(case.params)
    rebuilt = keras_stack.build(as_stack(spec), params, "float64")  # named after the spec's layers
    report = verify_case(type(case)(spec, params, case.batch), "tensorflow", "float64", built_from=params,
                         model=rebuilt)
    assert report.verdict == "equivalent", render.table(report)


def test_build_refuses_what_keras_cannot_hold():
    spec = SequenceSpec("peep", 2, 3, 2, cell="lstm", use_peepholes=True)
    with pytest.raises(ValueError, match="peepholes"):
        keras_stack.build(as_stack(spec), make_case(spec, 0).params, "float64")


@pytest.mark.parametrize("head_input", ["mask_dropped", "mask_propagated"])
def test_trap_keras_loss_applies_the_propagated_mask(head_input, monkeypatch):
    """Framework fact (Keras 3.15): the mask of an RNN layer propagates through Dense to y_pred, and a
    Keras Loss object then averages over the real steps only. The reference's loss (and torch's, TF1's)
    averages over every step, so the adapter drops the mask before the head; without that the loss
    and every gradient differ."""
    spec = SequenceSpec("m", 2, 3, 2, cell="lstm", return_sequences=True)
    case = make_case(spec, 4, batch=3, steps=5, masked=True)
    if head_input == "mask_propagated":
        monkeypatch.setattr(keras_stack, "_unmasked", lambda t: t)  # the head's output keeps its Keras mask
    report = verify_case(case, "tensorflow", "float64")
    if head_input == "mask_dropped":
        assert report.verdict == "equivalent", render.table(report)
    else:
        assert not report.find("tensorflow", "loss", "loss").ok, render.table(report)
        assert report.find("tensorflow", "output", top_output(spec)).ok, render.table(report)
