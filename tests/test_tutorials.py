"""The tutorials' tasks: their data as the tutorials make it, the folded forget_bias, short training runs verified
in both frameworks, and --reproduce's figures."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from reference import stack
from reference.layers import Recurrent
from reference.params import init_params
from verify import cli, corpus, reproduce, training, tutorials, zoo
from verify.render import failures

TUTORIALS = ("sum", "echo", "binary_addition", "lm")


def test_corpus_is_seeded_and_has_thousands_of_words() -> None:
    a = tutorials.lm_corpus()
    b = corpus.generate(tutorials.LM_TOKENS)
    assert a.words == b.words
    assert len(a.vocabulary) == tutorials.LM_VOCABULARY >= 3000
    assert corpus.generate(2000, seed=5).words != corpus.generate(2000, seed=4).words
    ids = a.ids()
    assert ids.min() == 0 and ids.max() == len(a.vocabulary) - 1


def test_sum_data_counts_the_ones() -> None:
    spec = tutorials.sum_spec(8)
    batches, test = tutorials.sum_data(spec, np.random.default_rng(0), 3, 5, 4)
    for b in batches + [test]:
        np.testing.assert_array_equal(b.targets[:, 0], b.inputs[:, :, 0].sum(axis=1))
    assert all(np.all(v == 0) for b in batches for v in b.initial_state.values())  # the tutorial's istate
    assert any(np.any(v != 0) for v in test.initial_state.values())  # the held-out set exercises the states


def test_echo_targets_are_the_inputs_three_steps_back_across_batches() -> None:
    spec = tutorials.echo_spec()
    batches, _ = tutorials.echo_data(spec, np.random.default_rng(1), 4, 3, 3)
    x = np.concatenate([b.inputs[..., 0] for b in batches], axis=1)  # (B, 4 * 15): each row one sub-series
    y = np.concatenate([b.targets for b in batches], axis=1)
    np.testing.assert_array_equal(y[:, tutorials.ECHO_STEP:], x[:, :-tutorials.ECHO_STEP])
    assert batches[0].initial_state is not None and all(b.initial_state is None for b in batches[1:])


def test_addition_bits_are_least_significant_first() -> None:
    x, t = tutorials.addition_batch(np.array([5, 127]), np.array([3, 127]))
    np.testing.assert_array_equal(x[0, :, 0], [1, 0, 1, 0, 0, 0, 0, 0])  # 5
    np.testing.assert_array_equal(t[0, :, 0], [0, 0, 0, 1, 0, 0, 0, 0])  # 8
    np.testing.assert_array_equal(t[1, :, 0], [0, 1, 1, 1, 1, 1, 1, 1])  # 254
    assert tutorials.all_sums(tutorials.addition_spec()).inputs.shape == (16384, 8, 2)


def test_lm_windows_predict_the_next_word() -> None:
    ids = np.arange(100)
    windows = tutorials.lm_windows(ids, 4, 6)
    x, y = windows[1]
    np.testing.assert_array_equal(y, x + 1)
    np.testing.assert_array_equal(x[1], np.arange(25 + 6, 25 + 12))  # row b continues sub-stream b


def test_folded_forget_bias_is_tf1s_run_time_forget_bias() -> None:
    """The zoo's LSTM with the forget bias folded into its initial bias computes what TF1's cell computes with
    forget_bias at run time (the reference has the run-time option)."""
    spec = tutorials.sum_spec(6)
    rng = np.random.default_rng(3)
    params = init_params(spec, rng)
    folded = tutorials.fold_forget_bias(spec, params, 0.8)
    batch = tutorials.sum_batch(spec, rng, 4, zero_state=False)
    run_time = dataclasses.replace(spec, layers=tuple(
        dataclasses.replace(l, forget_bias=0.8) if isinstance(l, Recurrent) else l for l in spec.layers))
    a = stack.evaluate(spec, folded, batch)
    b = stack.evaluate(run_time, params, batch)
    np.testing.assert_allclose(a["output"]["prediction"], b["output"]["prediction"], rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(a["gradient"]["lstm/fw/kernel"], b["gradient"]["lstm/fw/kernel"], rtol=1e-12,
                               atol=1e-13)
    changed = folded["lstm/fw/bias"] - params["lstm/fw/bias"]
    np.testing.assert_allclose(changed, np.repeat([0.0, 0.8, 0.0, 0.0], 6))  # gate order i, f, g, o


@pytest.mark.parametrize("name", TUTORIALS)
def test_tutorial_model_trains_equivalently_in_float64(name: str) -> None:
    entry = zoo.get(name)
    report = training.compare_trained(name, entry.spec, entry.train, entry.frameworks, "float64", 0, steps=4)
    assert report.verdict == "equivalent", failures(report)
    steps = [c for c in report.checks if c.quantity == "training step" and c.name != "loss"]
    assert {c.framework for c in steps} == set(entry.frameworks)
    assert max(c.norm_rel for c in steps) <= 1e-12, failures(report)


@pytest.mark.parametrize("name", TUTORIALS)
def test_tutorial_model_trains_equivalently_in_float32(name: str) -> None:
    entry = zoo.get(name)
    report = training.compare_trained(name, entry.spec, entry.train, entry.frameworks, "float32", 0, steps=4)
    assert report.verdict == "equivalent", failures(report)


def test_reproduce_prints_every_sides_figure() -> None:
    report = reproduce.reproduce("binary_addition", ("tensorflow", "torch"), "float64", 0, steps=3)
    assert report.verdict == "equivalent", failures(report)
    lines = [n for n in report.notes if n.startswith("  ")]
    sides = [line.split(":")[0].strip() for line in lines]
    assert sides == ["reference, tensorflow's rules", "tensorflow", "reference, torch's rules", "torch"]
    assert any(n.startswith("reproduce seeds/003") for n in report.notes)


def test_reproduce_refuses_other_models(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["compare", "--model", "lstm", "--reproduce"]) == cli.EXIT_USAGE
    assert "--reproduce applies to the tutorials' models" in capsys.readouterr().err
