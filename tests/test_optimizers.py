"""reference/optimizers.py against the real torch.optim and keras.optimizers, step by step in float64, and through
compare_trained; the variants' differences, the defaults and clipping, each shown to be checked."""
from __future__ import annotations

import inspect

import numpy as np
import pytest

from adapters import registry
from reference import optimizers, seq2seq
from tests.seq2seq_cases import small_case, small_spec
from verify import render
from verify.training import TrainSetup, compare_trained

LR = {"sgd": 0.5, "momentum": 0.1, "nesterov": 0.1, "adagrad": 0.1, "rmsprop": 0.01, "rmsprop_centered": 0.01,
      "adam": 0.01, "adamw": 0.01}
VARIANT = {"torch": "torch", "tensorflow": "keras"}
STEPS = 20
ACCEPT = 1e-12  # issue 11: every weight after every step, normwise relative
# where the torch and Keras variants compute different float64 steps with each framework's defaults (sgd at lr 0.5,
# exact in float32, is the same in both)
DIFFERENT = {n for n in optimizers.NAMES if n != "sgd"}


def _norm_rel(x: np.ndarray, ref: np.ndarray) -> float:
    return float(np.max(np.abs(x - ref)) / np.max(np.abs(ref)))


def _batches(spec, n: int) -> list:
    return [small_case(spec, 100 + k, batch=5)[1] for k in range(n)]


def _framework_run(framework: str, name: str, hyper: dict) -> tuple:
    """The framework's weights before its first step and after each of ``STEPS`` steps, and the batches."""
    spec = small_spec("attention")
    params, _ = small_case(spec, 0)
    batches = _batches(spec, STEPS)
    adapter = registry.get(framework, spec)
    model = adapter.build(spec, params, "float64")
    snaps = [adapter.extract(model)]
    adapter.train(model, spec, batches, LR[name], "float64", after_step=lambda i: snaps.append(adapter.extract(model)),
                  optimizer=name, hyper=hyper)
    assert len(snaps) == STEPS + 1
    return spec, snaps, batches


def _worst_step(spec, snaps: list, batches: list, name: str, variant: str, hyper: dict) -> float:
    """The worst normwise error of the framework's weights after any step against the reference's step from the
    framework's weights before it, with the reference's state carried along them."""
    state = optimizers.init(name, snaps[0], variant, **hyper)
    worst = 0.0
    for s, batch in enumerate(batches):
        _, grads = seq2seq.gradients(spec, snaps[s], batch)
        after, state = optimizers.step(name, snaps[s], grads, state, LR[name], variant, **hyper)
        worst = max([worst] + [_norm_rel(snaps[s + 1][n], after[n]) for n in after])
    return worst


@pytest.mark.parametrize("framework", ["torch", "tensorflow"])
@pytest.mark.parametrize("name", optimizers.NAMES)
def test_every_step_of_the_real_optimiser_agrees_with_its_variant(framework: str, name: str) -> None:
    """20 steps of torch.optim / keras.optimizers in float64: every weight after every step within 1e-12 (normwise
    relative) of the reference's step in the framework's variant, both stepping from the framework's weights and
    along the reference's own trajectory from the same start; the other framework's variant is measurably off, so
    modelling the wrong variant fails here."""
    spec, snaps, batches = _framework_run(framework, name, {})
    own = VARIANT[framework]
    assert _worst_step(spec, snaps, batches, name, own, {}) <= ACCEPT
    p, state = dict(snaps[0]), optimizers.init(name, snaps[0], own)
    for s, batch in enumerate(batches):
        _, grads = seq2seq.gradients(spec, p, batch)
        p, state = optimizers.step(name, p, grads, state, LR[name], own)
        for n in p:
            assert _norm_rel(snaps[s + 1][n], p[n]) <= ACCEPT, (s, n, _norm_rel(snaps[s + 1][n], p[n]))
    other = "keras" if own == "torch" else "torch"
    other_worst = _worst_step(spec, snaps, batches, name, other, {})
    if name in DIFFERENT:
        assert other_worst > 1e-9, other_worst
    else:
        assert other_worst <= ACCEPT, other_worst


@pytest.mark.parametrize("framework", ["torch", "tensorflow"])
@pytest.mark.parametrize("name,hyper", [
    ("sgd", {"weight_decay": 0.03}),  # torch: L2 into the gradient; Keras: decoupled, wd rounded to float32
    ("momentum", {"weight_decay": 0.03, "momentum": 0.5}),
    ("adagrad", {"weight_decay": 0.03, "initial_accumulator_value": 0.2, "eps": 1e-6}),
    ("rmsprop_centered", {"weight_decay": 0.03, "rho": 0.8}),
    ("adam", {"weight_decay": 0.03, "beta_1": 0.8, "beta_2": 0.99, "eps": 1e-6}),
    ("adamw", {"weight_decay": 0.03}),
    ("sgd", {"clip_norm": 0.3}),
    ("momentum", {"clip_value": 0.02}),
    ("adam", {"clip_norm": 0.3}),
    ("rmsprop", {"clip_value": 0.02}),
])
def test_weight_decay_clipping_and_hyper_parameters_agree(framework: str, name: str, hyper: dict) -> None:
    """The same, with weight decay, clipping and hyper-parameters other than the defaults; the clipping is active
    (the gradients' global norm, or some element, exceeds it at the first step)."""
    spec, snaps, batches = _framework_run(framework, name, hyper)
    _, grads = seq2seq.gradients(spec, snaps[0], batches[0])
    if "clip_norm" in hyper:
        assert optimizers.global_norm(grads, VARIANT[framework]) > 2 * hyper["clip_norm"]
    if "clip_value" in hyper:
        assert any(np.any(np.abs(g) > hyper["clip_value"]) for g in grads.values())
    assert _worst_step(spec, snaps, batches, name, VARIANT[framework], hyper) <= ACCEPT


SETUP = TrainSetup(steps=6, batch_size=5, lr=0.5, held_out=6, make_data=lambda spec, rng, steps, b, held_out: (
    _batches(spec, steps), small_case(spec, 99, batch=held_out)[1]))


@pytest.mark.parametrize("name", optimizers.NAMES)
def test_compare_trained_with_every_optimiser_is_equivalent(name: str) -> None:
    """compare_trained(optimizer=NAME) in float64: both frameworks pass every check, the per-step checks are against
    the optimiser, and the notes name the optimiser, each framework's variant and its hyper-parameters."""
    spec = small_spec("attention")
    report = compare_trained("small_attention", spec, SETUP, ("tensorflow", "torch"), "float64", seed=4,
                             optimizer=name, lr=LR[name])
    assert report.verdict == "equivalent", render.table(report)
    label = "SGD" if name == "sgd" else name
    steps = [c for c in report.checks if c.quantity == "training step"]
    assert steps and {c.against for c in steps} == {f"reference {label} step"}
    worst = max(c.norm_rel for c in steps if c.name != "loss")
    assert worst <= ACCEPT, worst
    note = next(n for n in report.notes if n.startswith("optimiser: "))
    for fw in ("tensorflow", "torch"):
        assert f"{fw} {name}, {VARIANT[fw]} variant: lr {LR[name]:g}" in note, note
    assert "eps 1e-07" in note or name in ("sgd", "momentum", "nesterov"), note


@pytest.mark.parametrize("name", ["adagrad", "adam"])
def test_compare_trained_float32(name: str) -> None:
    spec = small_spec("seq2seq")
    report = compare_trained("small_seq2seq", spec, SETUP, ("tensorflow", "torch"), "float32", seed=2,
                             optimizer=name, lr=LR[name])
    assert report.verdict == "equivalent", render.table(report)


@pytest.mark.parametrize("name,slip", [("adam", 0.0), ("adam", 1e-9), ("adagrad", 1e-9), ("rmsprop", 1e-9)])
def test_one_step_with_another_learning_rate_is_named_at_its_step(name: str, slip: float, monkeypatch) -> None:
    """torch's optimiser takes its third step (step 2) alone with a learning rate 1e-9 too large (relative): the
    per-step check names step 2 and every other step passes; without the slip every step passes. The propagated
    allowance of an adaptive optimiser is therefore not so wide that a float64 slip of 1e-9 hides in it."""
    from adapters import torch_seq2seq
    make = torch_seq2seq._optimizer

    def slipping(params, opt_name, lr, hyper):
        opt, clip = make(params, opt_name, lr, hyper)
        calls = []

        def clip_and_slip() -> None:  # runs before each opt.step()
            clip()
            calls.append(None)
            opt.param_groups[0]["lr"] = lr * (1 + slip) if len(calls) == 3 else lr
        return opt, clip_and_slip
    monkeypatch.setattr(torch_seq2seq, "_optimizer", slipping)
    spec = small_spec("seq2seq")
    report = compare_trained("small_seq2seq", spec, SETUP, ("torch",), "float64", seed=3, optimizer=name, lr=LR[name])
    steps = [c for c in report.checks if c.quantity == "training step" and c.name != "loss"]
    if slip == 0.0:
        assert all(c.ok for c in steps), render.table(report)
        return
    assert {c.first_bad_step for c in steps if not c.ok} == {2}, render.table(report)
    assert any(n.startswith("torch: training leaves the policy at step 2 of 6") for n in report.notes), report.notes


def test_frameworks_on_different_variants_are_paired_through_the_reference_runs() -> None:
    """Keras's and torch's Adagrad differ (initial accumulator 0.1 vs 0, epsilon inside vs outside the root): the
    trained weights of the pair are far apart, and the pair's allowance names the measured distance between the
    reference's two runs; plain SGD at lr 0.5 runs one reference and pairs by the sum of both allowances."""
    spec = small_spec("attention")
    report = compare_trained("small_attention", spec, SETUP, ("tensorflow", "torch"), "float64", seed=4,
                             optimizer="adagrad", lr=0.1)
    pair = report.find("tensorflow~torch", "trained parameter", "output/kernel")
    assert pair.ok and pair.max_abs > 1e-3 and "training drift" in pair.allowed.why, pair
    assert any("variants compute different runs" in n for n in report.notes), report.notes
    sgd = compare_trained("small_attention", spec, SETUP, ("tensorflow", "torch"), "float64", seed=4)
    pair = sgd.find("tensorflow~torch", "trained parameter", "output/kernel")
    assert pair.ok and pair.allowed.why.startswith("sum of"), pair
    assert not any("variants compute different runs" in n for n in sgd.notes), sgd.notes


def _params(seed: int = 0) -> tuple[dict, dict]:
    rng = np.random.default_rng(seed)
    p = {"w": rng.uniform(-1, 1, (3, 4)), "b": rng.uniform(-1, 1, 5)}
    return p, {n: rng.uniform(-2, 2, v.shape) for n, v in p.items()}


def test_variants_differ_where_the_docstring_says() -> None:
    """Adagrad's initial accumulator (Keras float32(0.1), torch 0) and epsilon; Adam's epsilon before or after the
    bias correction; Keras's float32 learning rate and momentum; torch's L2 against Keras's decoupled decay."""
    p, g = _params()
    keras_acc = optimizers.init("adagrad", p, "keras")["accumulator"]["w"]
    torch_acc = optimizers.init("adagrad", p, "torch")["accumulator"]["w"]
    assert np.all(keras_acc == float(np.float32(0.1))) and np.all(torch_acc == 0.0)
    # torch's first Adagrad step is lr * g / (|g| + 1e-10); Keras's lr32 * g / sqrt(0.1 + g^2 + 1e-7)
    after, _ = optimizers.step("adagrad", p, g, optimizers.init("adagrad", p, "torch"), 0.1, "torch")
    np.testing.assert_allclose(after["w"], p["w"] - 0.1 * g["w"] / (np.abs(g["w"]) + 1e-10), rtol=1e-15)
    after, _ = optimizers.step("adagrad", p, g, optimizers.init("adagrad", p, "keras"), 0.1, "keras")
    lr32 = float(np.float32(0.1))
    np.testing.assert_allclose(after["w"], p["w"] - lr32 * g["w"] / np.sqrt(keras_acc + g["w"] ** 2 + 1e-7),
                               rtol=1e-15)
    # Adam, first step with eps large enough to show: torch eps on sqrt(v_hat) = |g|, Keras eps on sqrt(v) = sqrt(1 -
    # b2) |g| (its alpha carries the bias correction)
    eps, lr = 1e-2, 0.01
    t_after, _ = optimizers.step("adam", p, g, optimizers.init("adam", p, "torch"), lr, "torch", eps=eps)
    k_after, _ = optimizers.step("adam", p, g, optimizers.init("adam", p, "keras"), lr, "keras", eps=eps)
    np.testing.assert_allclose(t_after["w"], p["w"] - lr * g["w"] / (np.abs(g["w"]) + eps), rtol=1e-14)
    b1_32, b2_32 = float(np.float32(0.9)), float(np.float32(0.999))
    alpha = float(np.float32(lr)) * np.sqrt(1 - b2_32) / (1 - b1_32)
    m, v = 0.1 * g["w"], (1 - 0.999) * g["w"] ** 2
    np.testing.assert_allclose(k_after["w"], p["w"] - m * alpha / (np.sqrt(v) + eps), rtol=1e-14)
    assert _norm_rel(t_after["w"], k_after["w"]) > 1e-3
    # momentum: equal in exact arithmetic, apart by Keras's float32 mu and lr at lr = 0.1
    a = optimizers.init("momentum", p, "torch")
    b = optimizers.init("momentum", p, "keras")
    pa, pb = dict(p), dict(p)
    for _ in range(3):
        pa, a = optimizers.step("momentum", pa, g, a, 0.1, "torch")
        pb, b = optimizers.step("momentum", pb, g, b, 0.1, "keras")
    assert 1e-10 < _norm_rel(pb["w"], pa["w"]) < 1e-6
    pa, a = optimizers.step("momentum", p, g, optimizers.init("momentum", p, "torch"), 0.5, "torch", momentum=0.5)
    pb, b = optimizers.step("momentum", p, g, optimizers.init("momentum", p, "keras"), 0.5, "keras", momentum=0.5)
    assert _norm_rel(pb["w"], pa["w"]) < 1e-15  # float32-exact lr and mu: the same first step
    # weight decay on SGD: torch g + wd p, Keras p - p wd32 lr32
    pa, _ = optimizers.step("sgd", p, g, {"step": 0}, 0.1, "torch", weight_decay=0.03)
    pb, _ = optimizers.step("sgd", p, g, {"step": 0}, 0.1, "keras", weight_decay=0.03)
    np.testing.assert_allclose(pa["w"], p["w"] - 0.1 * (g["w"] + 0.03 * p["w"]), rtol=1e-15)
    wd32 = float(np.float32(0.03))
    np.testing.assert_allclose(pb["w"], (p["w"] - p["w"] * wd32 * lr32) - g["w"] * lr32, rtol=1e-15)


def test_clipping_by_global_norm_and_by_value_is_the_direct_computation() -> None:
    p, g = _params(1)
    norm = np.sqrt(sum(np.sum(v ** 2) for v in g.values()))
    assert norm > 1.0
    torch_c = optimizers.clip(g, "torch", clip_norm=1.0)
    keras_c = optimizers.clip(g, "keras", clip_norm=1.0)
    for n in g:
        np.testing.assert_allclose(torch_c[n], g[n] * (1.0 / (norm + 1e-6)), rtol=1e-15)
        np.testing.assert_allclose(keras_c[n], g[n] / norm, rtol=1e-15)
        np.testing.assert_array_equal(optimizers.clip(g, "torch", clip_value=0.5)[n], np.clip(g[n], -0.5, 0.5))
        np.testing.assert_array_equal(optimizers.clip(g, "keras", clip_value=0.5)[n], np.clip(g[n], -0.5, 0.5))
        # below the threshold Keras leaves the gradients; torch still divides by norm + 1e-6 and clamps at 1
        np.testing.assert_array_equal(optimizers.clip(g, "keras", clip_norm=2 * norm)[n], g[n])
        np.testing.assert_array_equal(optimizers.clip(g, "torch", clip_norm=2 * norm)[n], g[n])
    assert np.sqrt(sum(np.sum(v ** 2) for v in keras_c.values())) == pytest.approx(1.0, rel=1e-15)
    # clipped before the update: SGD moves by lr times the clipped gradient
    after, _ = optimizers.step("sgd", p, g, {"step": 0}, 0.5, "keras", clip_norm=1.0)
    np.testing.assert_allclose(after["w"], p["w"] - 0.5 * g["w"] / norm, rtol=1e-15)
    with pytest.raises(ValueError, match="only one of clip_norm and clip_value"):
        optimizers.step("sgd", p, g, {"step": 0}, 0.5, "keras", clip_norm=1.0, clip_value=0.5)


def test_the_reference_defaults_are_the_frameworks_defaults() -> None:
    """Each variant's defaults read back from torch.optim's and keras.optimizers' own signatures."""
    import keras
    import torch

    def sig(cls) -> dict:
        return {k: v.default for k, v in inspect.signature(cls.__init__).parameters.items()}
    torch_of = {"sgd": torch.optim.SGD, "momentum": torch.optim.SGD, "nesterov": torch.optim.SGD,
                "adagrad": torch.optim.Adagrad, "rmsprop": torch.optim.RMSprop, "rmsprop_centered": torch.optim.RMSprop,
                "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
    keras_of = {"sgd": keras.optimizers.SGD, "momentum": keras.optimizers.SGD, "nesterov": keras.optimizers.SGD,
                "adagrad": keras.optimizers.Adagrad, "rmsprop": keras.optimizers.RMSprop,
                "rmsprop_centered": keras.optimizers.RMSprop, "adam": keras.optimizers.Adam,
                "adamw": keras.optimizers.AdamW}
    torch_names = {"rho": "alpha", "eps": "eps", "initial_accumulator_value": "initial_accumulator_value",
                   "weight_decay": "weight_decay"}
    keras_names = {"rho": "rho", "eps": "epsilon", "initial_accumulator_value": "initial_accumulator_value",
                   "weight_decay": "weight_decay", "beta_1": "beta_1", "beta_2": "beta_2"}
    for name in optimizers.NAMES:
        t, k = sig(torch_of[name]), sig(keras_of[name])
        for key, value in optimizers.defaults(name, "torch").items():
            if key in ("beta_1", "beta_2"):
                assert t["betas"][key == "beta_2"] == value, (name, key)
            elif key in torch_names:
                assert t[torch_names[key]] == value, (name, key, t[torch_names[key]], value)
        for key, value in optimizers.defaults(name, "keras").items():
            if key in keras_names:
                assert (k[keras_names[key]] or 0.0) == value, (name, key, k[keras_names[key]], value)
        if name in ("momentum", "nesterov"):  # ours: both frameworks' SGD default to no momentum
            assert t["momentum"] == 0 and k["momentum"] == 0.0
            assert optimizers.defaults(name, "torch")["momentum"] == optimizers.defaults(name, "keras")["momentum"]


def test_state_is_explicit_and_inputs_are_not_changed() -> None:
    p, g = _params(2)
    p0 = {n: v.copy() for n, v in p.items()}
    state = optimizers.init("adam", p, "torch")
    new_p, new_state = optimizers.step("adam", p, g, state, 0.01, "torch")
    assert state["step"] == 0 and all(np.all(v == 0) for v in state["m"].values())
    assert new_state["step"] == 1 and all(np.array_equal(p[n], p0[n]) for n in p)
    again, _ = optimizers.step("adam", p, g, state, 0.01, "torch")
    assert all(np.array_equal(again[n], new_p[n]) for n in p)  # the same inputs, the same step


@pytest.mark.parametrize("call,expected", [
    (lambda: optimizers.init("lbfgs", {}), "unknown optimiser 'lbfgs'; expected one of: sgd"),
    (lambda: optimizers.init("adam", {}, "jax"), "unknown optimiser variant 'jax'"),
    (lambda: optimizers.init("adam", {}, "torch", momentum=0.9), "optimiser 'adam' takes no momentum"),
])
def test_bad_names_are_one_line_errors(call, expected: str) -> None:
    with pytest.raises(ValueError) as e:
        call()
    assert expected in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("args,expected", [
    (("--model", "attention", "--optimizer", "lbfgs"), "invalid choice: 'lbfgs'"),
    (("--model", "rnn", "--optimizer", "adam"), "--optimizer applies to the trained models (attention"),
])
def test_cli_refuses_an_unknown_optimiser_and_an_untrained_model(args: tuple, expected: str, capsys) -> None:
    from verify import cli
    assert cli.main(["compare", *args, "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0], err
