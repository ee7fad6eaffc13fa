"""Clipping by the global norm: the norms each framework clipped by, checked per step and injected into the floor."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from adapters import registry
from reference import seq2seq, stack, summed
from reference.params import init_params
from verify import render, tolerance, training
from verify.training import compare_trained
from tests.seq2seq_cases import small_spec
from tests.test_training import _data as seq2seq_data
from tests.test_stack_training import FLOATS, IDS, _data, _setup

CLIP = {"clip_norm": 0.05}  # active at every step of the small stacks at lr 0.5 (tests/test_stack_training.py)


def _small_lm() -> tuple:
    """The zoo's lm at hidden 16 for 8 steps (its 3918-word vocabulary, clip_norm 5, SGD at lr 1, carried state):
    embedding and head of 62688 weights, where torch 2.13's clip_grad_norm_ is 2e-5 off (measured) and the
    trajectory amplifies it."""
    from verify import tutorials, zoo
    return tutorials.lm_spec(16), dataclasses.replace(zoo.get("lm").train, steps=8)


def _no_injection(monkeypatch) -> None:
    """Every ensemble member's injected clip-norm error times zero: the floor of the ulp-moved starts alone."""
    monkeypatch.setattr(training, "_clip_signs", lambda seed, member, steps: np.zeros(steps))


def _spy_torch_norms(monkeypatch, change=None) -> list[float]:
    """What torch.nn.utils.clip_grad_norm_ returns at each call, optionally through ``change(call, params,
    max_norm)``, which clips instead of it."""
    import torch
    clip_grad_norm = torch.nn.utils.clip_grad_norm_
    returned: list[float] = []

    def spy(params, max_norm, *args, **kw):
        params = list(params)
        norm = change(len(returned), params, max_norm) if change else clip_grad_norm(params, max_norm, *args, **kw)
        returned.append(float(norm))
        return norm
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", spy)
    return returned


def test_the_lm_false_alarm_is_gone_because_the_floor_holds_torchs_norm_error(monkeypatch) -> None:
    """The lm false alarm, small: torch's float32 norms are within the clip-norm allowance (2e-5 off), yet 8 steps
    at lr 1 amplify them past the floor of ulp-moved starts alone (NumPy's norms are ~1e-7 off): the trained weights
    fail without the injection, and pass with it, well within their allowance."""
    spec, setup = _small_lm()
    report = compare_trained("lm_small", spec, setup, ("torch",), "float32", seed=0)
    assert report.verdict == "equivalent", render.table(report)
    clip = report.find("torch", "clip norm", "global norm")
    assert clip.ok and 1e-6 < clip.max_rel < 1e-4, clip
    trained = [c for c in report.checks if c.quantity == "trained parameter" and c.against == "reference SGD"]
    assert max(c.used for c in trained) < 0.5, render.table(report)
    note = next(n for n in report.notes if n.startswith("torch: clip_norm 5:"))
    assert "end-of-training floor includes its measured clip-norm error" in note, note
    _no_injection(monkeypatch)
    bare = compare_trained("lm_small", spec, setup, ("torch",), "float32", seed=0)
    assert bare.find("torch", "clip norm", "global norm").ok, render.table(bare)
    assert all(c.ok for c in bare.checks if c.quantity == "training step"), render.table(bare)
    assert any(not c.ok for c in bare.checks if c.quantity == "trained parameter"), render.table(bare)


def test_torch_reports_what_clip_grad_norm_returned(monkeypatch) -> None:
    returned = _spy_torch_norms(monkeypatch)
    rng = np.random.default_rng(5)
    params = init_params(IDS, rng)
    batches, _ = _data(IDS, rng, 3, 3, 4)
    adapter = registry.get("torch", IDS)
    model = adapter.build(IDS, params, "float32")
    recorded: list[float] = []
    adapter.train(model, IDS, batches, 0.5, "float32", optimizer="sgd", hyper=CLIP, clip_norms=recorded)
    assert len(recorded) == 3 and recorded == returned, (recorded, returned)
    unclipped: list[float] = []
    adapter.train(adapter.build(IDS, params, "float32"), IDS, batches, 0.5, "float32", clip_norms=unclipped)
    assert unclipped == []  # nothing to report without clip_norm


def test_keras_norm_is_the_one_keras_clips_by() -> None:
    """adapters/keras_optim.py's norm is Keras's own ``global_norm`` (what ``global_clipnorm`` divides by), bit for
    bit, on the same float32 tensors."""
    from adapters import keras_optim
    from adapters.tf_import import import_tf
    tf, keras = import_tf()
    from keras.src.optimizers import base_optimizer
    rng = np.random.default_rng(0)
    grads = [tf.constant(rng.normal(size=s).astype(np.float32)) for s in ((300, 40), (40,), (7, 3, 5))]
    assert float(keras_optim.global_norm(keras, grads)) == float(base_optimizer.global_norm(grads))


@pytest.mark.parametrize("framework", ["torch", "tensorflow"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_every_frameworks_norms_are_checked_at_every_step(framework: str, dtype: str) -> None:
    """One "clip norm" check per framework over the steps, well within its allowance; the allowance's rtol is the
    summation bound of its largest tensor and its tensor count (torch counts both biases of a summed pair)."""
    report = compare_trained("ids_dropout", IDS, _setup(True, steps=4), (framework,), dtype, seed=2, optimizer="sgd",
                             hyper=CLIP)
    assert report.verdict == "equivalent", render.table(report)
    check = report.find(framework, "clip norm", "global norm")
    assert check.shape == (4,) and check.used < 0.1, check
    copies = getattr(registry.get(framework, IDS), "summed_tensors", lambda s: {})(IDS)
    sizes = [int(np.prod(s)) for s in summed.expand_grads(stack.param_shapes(IDS), copies).values()]
    assert check.allowed.rtol == tolerance.norm_summation_error(sizes, dtype)
    assert any(n.startswith(f"{framework}: clip_norm 0.05:") for n in report.notes), report.notes


def test_without_clipping_nothing_is_recorded_or_injected() -> None:
    report = compare_trained("floats", FLOATS, _setup(False, steps=3), ("torch",), "float32", seed=3)
    assert not any(c.quantity == "clip norm" for c in report.checks)
    assert not any("clip_norm" in n for n in report.notes), report.notes


def test_a_norm_that_leaves_out_a_tensor_at_one_step_is_named_at_that_step(monkeypatch) -> None:
    """torch's clip computing its norm without the embedding's gradient at step 2 alone (and clipping by it): the
    clip-norm check names step 2, every other step's norm passes; its error is not taken into the floor."""
    import torch
    clip_grad_norm = torch.nn.utils.clip_grad_norm_

    def without_first(call: int, params: list, max_norm: float):
        if call != 2:
            return clip_grad_norm(params, max_norm)
        norm = clip_grad_norm(params[1:], max_norm)  # the others clipped by their own norm
        params[0].grad.mul_(torch.clamp(max_norm / (norm + 1e-6), max=1.0))
        return norm
    _spy_torch_norms(monkeypatch, without_first)
    report = compare_trained("ids_dropout", IDS, _setup(False, steps=4), ("torch",), "float32", seed=2,
                             optimizer="sgd", hyper=CLIP)
    check = report.find("torch", "clip norm", "global norm")
    assert not check.ok and check.first_bad_step == 2, render.table(report)
    assert any(n.startswith("torch: training leaves the policy at step 2 of 4") and "global norm" in n
               for n in report.notes), report.notes
    assert report.verdict == "mismatch"


def test_clipping_at_the_wrong_threshold_is_named_at_the_first_step_it_changes(monkeypatch) -> None:
    """torch clipping the small lm at 4 instead of 5: its norms are right (the clip-norm check passes) and the
    training steps fail first at the first step whose norm exceeds 4, where the clip changes the step."""
    import torch
    clip_grad_norm = torch.nn.utils.clip_grad_norm_
    norms = _spy_torch_norms(monkeypatch, lambda call, params, max_norm: clip_grad_norm(params, 0.8 * max_norm))
    spec, setup = _small_lm()
    report = compare_trained("lm_small", spec, setup, ("torch",), "float32", seed=0)
    first = next(s for s, n in enumerate(norms) if n > 4.0)
    assert first > 0, norms  # the step named is not just the first
    assert report.find("torch", "clip norm", "global norm").ok, render.table(report)
    steps = [c for c in report.checks if c.quantity == "training step" and c.name != "loss"]
    assert {c.first_bad_step for c in steps if not c.ok} == {first}, (norms, render.table(report))


@pytest.mark.parametrize("family,carry", [("stack", True), ("seq2seq", False)])
def test_a_retrain_without_norm_errors_is_the_reference_run_bit_for_bit(family: str, carry: bool) -> None:
    """``_retrain``'s own loop (used where norm errors are injected) with zero errors is ``optimizer_train``, bit for
    bit: the injection is the only thing it adds."""
    rng = np.random.default_rng(1)
    if family == "stack":
        module, spec = stack, FLOATS
        params = init_params(spec, rng)
        batches, _ = _data(spec, rng, 4, 3, 3)
        kw = training._train_kwargs(carry, {"lstm/fw/bias": 2})
    else:
        module, spec = seq2seq, small_spec("seq2seq")
        params = init_params(spec, rng)
        batches, _ = seq2seq_data(spec, rng, 4, 5, 3)
        kw = {}
    low = [b.astype(np.dtype("float32")) for b in batches]
    opt = training.Optimizer("sgd", 0.5, dict(CLIP))
    start = training._cast(params, "float32")
    want, want_losses = training._retrain(module, spec, start, low, opt, "torch", kw)
    got, got_losses = training._retrain(module, spec, start, low, opt, "torch", kw, [1e-3] * 4, np.zeros(4))
    assert np.array_equal(got_losses, want_losses)
    assert all(np.array_equal(got[n], want[n]) for n in want)
    moved, _ = training._retrain(module, spec, start, low, opt, "torch", kw, [1e-3] * 4, np.ones(4))
    assert any(not np.array_equal(moved[n], want[n]) for n in want)  # the injection moves the run


def test_the_injected_signs_are_seeded_and_differ_between_members() -> None:
    a, b = training._clip_signs(3, 0, 50), training._clip_signs(3, 1, 50)
    assert np.array_equal(a, training._clip_signs(3, 0, 50)) and not np.array_equal(a, b)
    assert set(np.unique(a)) == {-1.0, 1.0}


def test_the_summation_bound_holds_for_a_sequential_float32_sum() -> None:
    """The worst order (one accumulator, left to right) of squares that each add less than an ulp of the running
    sum (the bound's pessimistic case) stays within ``norm_summation_error``; a norm missing a tensor does not."""
    rng = np.random.default_rng(0)
    g = np.concatenate([[300.0], rng.uniform(0.0, 0.01, 20000)]).astype(np.float32)
    acc = np.float32(0)
    for x in g:
        acc = np.float32(acc + x * x)
    rel = abs(float(np.sqrt(acc)) - float(np.linalg.norm(g.astype(np.float64)))) / float(np.linalg.norm(g))
    bound = tolerance.norm_summation_error([g.size], "float32")
    assert 1e-7 < rel <= bound, (rel, bound)
    h = rng.normal(size=(50, 20))
    left_out = 1 - np.linalg.norm(h[1:]) / np.linalg.norm(h)  # one row of 50: ~1 % of the norm
    assert left_out > tolerance.norm_summation_error([h.size], "float32") * 100


def test_the_gradient_rules_effect_on_the_norm_is_the_boxs_extremes() -> None:
    """No gradient within the rule's box has a norm further from the reference's than ``norm_deviation``, and a
    corner reaches it."""
    rng = np.random.default_rng(2)
    grads = {"w": rng.normal(size=(6, 5)), "b": np.zeros(4)}
    atol, rtol = {"w": 1e-3, "b": 2e-3}, 1e-4
    norm, dev = tolerance.norm_deviation(grads, atol, rtol)
    assert norm == pytest.approx(np.sqrt(sum(np.sum(v ** 2) for v in grads.values())), rel=1e-15)
    for _ in range(200):
        moved = {n: v + rng.uniform(-1, 1, v.shape) * (atol[n] + rtol * np.abs(v)) for n, v in grads.items()}
        assert abs(np.sqrt(sum(np.sum(v ** 2) for v in moved.values())) - norm) <= dev * (1 + 1e-12)
    corner = {n: v + np.sign(v + (v == 0)) * (atol[n] + rtol * np.abs(v)) for n, v in grads.items()}
    assert np.sqrt(sum(np.sum(v ** 2) for v in corner.values())) - norm == pytest.approx(dev, rel=1e-9)


def test_the_floor_is_shared_only_where_the_injected_errors_agree() -> None:
    """Two frameworks with one float64 run and the same injection share its ensemble; different injections get
    their own floors over the same run (a pair is then still the sum of both sides)."""
    from verify.training import _reference_runs
    rng = np.random.default_rng(1)
    params = init_params(FLOATS, rng)
    batches, _ = _data(FLOATS, rng, 3, 3, 3)
    opt = training.Optimizer("sgd", 0.5, dict(CLIP))
    plans = {"a": ("torch", {}), "b": ("torch", {})}
    same = _reference_runs(stack, FLOATS, params, batches, opt, plans, "float32", 0, False,
                           {"a": [1e-2] * 3, "b": [1e-2] * 3})
    assert same["a"] is same["b"]
    apart = _reference_runs(stack, FLOATS, params, batches, opt, plans, "float32", 0, False,
                            {"a": [1e-2] * 3, "b": None})
    assert apart["a"] is not apart["b"] and apart["a"].params is apart["b"].params
    wider = apart["a"].allow_trained["head/kernel"].atol
    assert wider > apart["b"].allow_trained["head/kernel"].atol, apart
