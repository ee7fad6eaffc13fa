"""Training comparison (verify/training.py) on small models: both frameworks, both dtypes, and the traps
that a port of AttentionCellWrapper can fall into, each shown to be caught and located."""
from __future__ import annotations

import numpy as np
import pytest

from reference.seq2seq import param_shapes
from verify import render
from verify.training import TrainSetup, compare_trained
from tests.seq2seq_cases import small_spec


def _data(spec, rng, steps, batch_size, held_out):
    def draw(n):
        from reference.seq2seq_spec import Seq2SeqBatch
        x = np.eye(spec.input_size)[rng.integers(0, spec.input_size, (n, spec.input_steps))]
        lead = (n,) if spec.kind == "bidirectional" else (n, spec.output_steps)
        return Seq2SeqBatch(x, np.eye(spec.output_size)[rng.integers(0, spec.output_size, lead)])
    test = draw(held_out)
    return [draw(batch_size) for _ in range(steps)], test


SETUP = TrainSetup(steps=3, batch_size=5, lr=0.5, held_out=6, make_data=_data)


@pytest.mark.parametrize("kind,cell", [("attention", "simple_rnn"), ("seq2seq", "simple_rnn"),
                                       ("bidirectional", "simple_rnn"), ("attention", "lstm"), ("seq2seq", "lstm"),
                                       ("bidirectional", "lstm")])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_trained_frameworks_match_the_reference(kind: str, cell: str, dtype: str) -> None:
    spec = small_spec(kind, cell=cell)
    report = compare_trained(f"small_{kind}", spec, SETUP, ("tensorflow", "torch"), dtype, seed=4)
    assert report.verdict == "equivalent", render.table(report)
    names = list(param_shapes(spec))
    for fw in ("tensorflow", "torch"):
        assert [c.name for c in report.checks if c.framework == fw and c.quantity == "gradient"] == names
    quantities = {(c.framework, c.quantity) for c in report.checks}
    for fw in ("tensorflow", "torch", "tensorflow~torch"):
        assert {(fw, "trained parameter"), (fw, "gradient"), (fw, "loss"), (fw, "accuracy")} <= quantities
    loss = report.find("torch", "loss", "loss")
    assert loss.value is not None and loss.reference_value is not None
    if dtype == "float64":
        worst = max(c.max_rel for c in report.checks if c.max_rel is not None)
        assert worst <= 1e-10, render.table(report)
    assert {"imports", "building", "training", "verifying"} <= set(report.timings)


@pytest.mark.parametrize("framework,variant,tensor,step", [
    ("torch", "", None, None),
    ("torch", "window_lag", "encoder", 1),
    ("torch", "drop_attention_state", "decoder", 0),
    ("tensorflow", "", None, None),
    ("tensorflow", "window_lag", "encoder", 1),
    ("tensorflow", "drop_attention_state", "decoder", 0),
])
def test_attention_traps_are_caught_at_their_first_step(framework: str, variant: str, tensor: str | None,
                                                       step: int | None) -> None:
    """Moving the window shift by one step, or starting the decoder without the encoder's attention state,
    is a mismatch located at the first step it changes; the correct model is equivalent."""
    spec = small_spec("attention", hidden_size=3, attn_size=0, attn_vec_size=0, attn_length=0)
    report = compare_trained("small_attention", spec, SETUP, (framework,), "float64", seed=8, variant=variant)
    if not variant:
        assert report.verdict == "equivalent", render.table(report)
        return
    assert report.verdict == "mismatch", render.table(report)
    check = report.find(framework, "output", tensor)
    assert not check.ok and check.first_bad_step == step, render.table(report)
    if variant == "drop_attention_state":  # the encoder is untouched; the second output symbol is the first wrong
        assert report.find(framework, "output", "encoder").ok, render.table(report)
        assert report.find(framework, "output", "logits").first_bad_step == 1, render.table(report)
    assert f"{framework}: first divergent step on the held-out set: output {tensor} step {step}" in \
        render.table(report)


@pytest.mark.parametrize("variant", ["", "whole_backward"])
def test_bidirectional_last_output_trap_is_caught(variant: str) -> None:
    """Keras's Bidirectional last state (backward after the whole reversed sequence) is not TF1's last output."""
    spec = small_spec("bidirectional")
    report = compare_trained("small_bidirectional", spec, SETUP, ("torch",), "float64", seed=8, variant=variant)
    if not variant:
        assert report.verdict == "equivalent", render.table(report)
        return
    assert report.verdict == "mismatch", render.table(report)
    assert not report.find("torch", "output", "logits").ok, render.table(report)
    assert report.find("torch", "output", "backward").ok, render.table(report)  # the cells themselves are right


@pytest.mark.parametrize("lr_error", [0.0, 1e-9])
def test_a_framework_training_with_another_learning_rate_is_caught(lr_error: float, monkeypatch) -> None:
    """The training floor (the reference retrained from weights moved by one ulp) stays at rounding level:
    an optimiser whose step differs by one part in 1e9 is a mismatch in the trained weights."""
    from adapters import torch_seq2seq
    train = torch_seq2seq.train

    def off_train(model, spec, batches, lr, *args, **kw):
        return train(model, spec, batches, lr * (1 + lr_error), *args, **kw)
    monkeypatch.setattr(torch_seq2seq, "train", off_train)
    spec = small_spec("attention")
    report = compare_trained("small_attention", spec, SETUP, ("torch",), "float64", seed=4)
    check = report.find("torch", "trained parameter", "output/kernel")
    assert check.ok == (lr_error == 0.0), render.table(report)
    assert report.verdict == ("equivalent" if lr_error == 0.0 else "mismatch"), render.table(report)


@pytest.mark.parametrize("dtype,slip", [("float64", 1e-9), ("float32", 1e-3)])
def test_one_bad_training_step_is_named_at_its_step(dtype: str, slip: float, monkeypatch) -> None:
    """A framework whose third SGD step alone uses a learning rate ``slip`` too large (relative; float32's
    rule allows 64 ulp of the largest gradient, so its slip must be larger): the per-step check (the
    reference stepping from the framework's own weights) names training step 2, and every other step
    passes; the same training without the slip is equivalent."""
    from adapters import torch_seq2seq
    train = torch_seq2seq.train

    def slipping_train(model, spec, batches, lr, dtype, progress=lambda s: None, after_step=lambda i: None, **kw):
        losses = train(model, spec, batches[:2], lr, dtype, progress, after_step, **kw)
        losses += train(model, spec, batches[2:3], lr * (1 + slip), dtype, progress, lambda i: after_step(2 + i),
                        **kw)
        return losses + train(model, spec, batches[3:], lr, dtype, progress, lambda i: after_step(3 + i), **kw)
    setup = TrainSetup(steps=5, batch_size=5, lr=0.5, held_out=6, make_data=_data)
    spec = small_spec("seq2seq")
    clean = compare_trained("small_seq2seq", spec, setup, ("torch",), dtype, seed=3)
    assert all(c.ok for c in clean.checks if c.quantity == "training step"), render.table(clean)
    monkeypatch.setattr(torch_seq2seq, "train", slipping_train)
    report = compare_trained("small_seq2seq", spec, setup, ("torch",), dtype, seed=3)
    steps = [c for c in report.checks if c.quantity == "training step" and c.name != "loss"]
    assert steps and all(c.against == "reference SGD step" for c in steps)
    assert {c.first_bad_step for c in steps if not c.ok} == {2}, render.table(report)
    assert report.find("torch", "training step", "loss").ok, render.table(report)  # losses come before the step
    assert any(n.startswith("torch: training leaves the policy at step 2 of 5") for n in report.notes), report.notes
    assert report.verdict == "mismatch"


def test_the_end_of_training_floor_is_an_ensemble_stated_in_the_report() -> None:
    """The trained weights' allowance names the ensemble, and the note says how many members it has."""
    from verify import tolerance
    report = compare_trained("small_seq2seq", small_spec("seq2seq"), SETUP, ("torch",), "float32", seed=2)
    assert any(f"the widest of {tolerance.ENSEMBLE} reference retrains in float32" in n for n in report.notes), \
        report.notes
    check = report.find("torch", "trained parameter", "output/kernel")
    assert f"{tolerance.ENSEMBLE} reference retrains" in check.allowed.rule, check.allowed
    assert tolerance.ENSEMBLE >= 5


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ensemble_starts_move_every_weight_by_one_ulp_of_its_dtype(dtype) -> None:
    from verify.training import _ulp_moved
    rng = np.random.default_rng(0)
    params = {"w": rng.normal(size=(4, 5)).astype(dtype), "b": rng.normal(size=7).astype(dtype)}
    a, b = _ulp_moved(params, 1, 0), _ulp_moved(params, 1, 1)
    for n, v in params.items():
        assert a[n].dtype == v.dtype, (n, a[n].dtype)
        assert np.array_equal(np.abs(a[n] - v), np.spacing(np.abs(v))) or \
            np.all(np.abs(a[n] - v) <= np.spacing(np.abs(v))), (n, a[n] - v)
        assert np.all(a[n] != v), n
    assert any(not np.array_equal(a[n], b[n]) for n in params)  # members differ


def test_the_per_step_gap_is_bucketed_by_its_largest_value() -> None:
    from verify.training import GAP_VALUES, gap_note
    assert gap_note("torch", [0.5, 0.25, 2.0]) == \
        "torch: per-step gap (largest error / allowance over the weights, steps 0-2): 0.5 0.25 2"
    note = gap_note("torch", [0.01] * 40 + [3.0] + [0.01] * 59)
    values = note.split(": ")[-1].split()
    assert "steps 0-99, largest of each 9 steps" in note and len(values) <= GAP_VALUES
    assert values.count("3") == 1 and values.index("3") == 40 // 9, note


def test_a_bad_step_shows_in_the_gap_note_at_its_step(monkeypatch) -> None:
    """The slipping step of ``test_one_bad_training_step_is_named_at_its_step`` uses far more than its allowance;
    every other step stays well within it."""
    from adapters import torch_seq2seq
    train = torch_seq2seq.train

    def slipping_train(model, spec, batches, lr, dtype, progress=lambda s: None, after_step=lambda i: None, **kw):
        losses = train(model, spec, batches[:2], lr, dtype, progress, after_step, **kw)
        return losses + train(model, spec, batches[2:], lr * (1 + 1e-9), dtype, progress,
                              lambda i: after_step(2 + i), **kw)
    monkeypatch.setattr(torch_seq2seq, "train", slipping_train)
    report = compare_trained("small_seq2seq", small_spec("seq2seq"), SETUP, ("torch",), "float64", seed=3)
    note = next(n for n in report.notes if n.startswith("torch: per-step gap"))
    values = [float(v) for v in note.split(": ")[-1].split()]
    assert len(values) == 3 and values[0] < 0.5 and values[1] < 0.5 and values[2] > 1, note


def test_the_models_own_optimiser_unless_one_is_named() -> None:
    from verify.training import optimizer_for
    setup = TrainSetup(steps=3, batch_size=5, lr=0.02, held_out=6, make_data=_data, optimizer="rmsprop",
                       hyper={"rho": 0.8})
    own = optimizer_for(setup)
    assert (own.name, own.lr, own.hyper) == ("rmsprop", 0.02, {"rho": 0.8})
    assert optimizer_for(setup, "adam").lr == 0.01 and optimizer_for(setup, "adam").hyper == {}
    assert optimizer_for(setup, "sgd").lr == 0.02
    assert (optimizer_for(SETUP).name, optimizer_for(SETUP).lr) == ("sgd", 0.5)
    with pytest.raises(ValueError, match="takes no momentum"):
        optimizer_for(TrainSetup(3, 5, 0.1, 6, _data, optimizer="adam", hyper={"momentum": 0.9}))
