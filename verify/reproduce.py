"""``compare --reproduce``: a tutorial's model trained for the tutorial's number of steps in every framework and
the reference, verified as ``compare`` verifies it, with the tutorial's headline figure beside each side's."""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Callable

import numpy as np

from reference import stack
from reference.spec import Batch
from reference.stack import StackSpec
from verify import tutorials
from verify.report import Report
from verify.training import TrainSetup


@dataclass(frozen=True)
class Reproduction:
    """What a tutorial reports and how we measure the same on each side's trained weights."""

    tutorial: str  # the seed file
    claim: str  # the tutorial's headline, in its terms
    figure: str  # what ``measure`` computes, in words
    spec: Callable[[], StackSpec]  # the tutorial's sizes
    setup: Callable[[TrainSetup], TrainSetup]  # the zoo's setup with the tutorial's steps and batch
    measure: Callable[[StackSpec, dict], float]  # the figure from trained weights, computed by the reference
    target: float | None = None  # the figure reaches the tutorial's result when >= target (None: lower is better)


def _accuracy(spec: StackSpec, params: dict, batch: Batch) -> float:
    return float(stack.forward(spec, params, batch)[0]["accuracy"]["accuracy"])


def _sum_accuracy(spec: StackSpec, params: dict) -> float:
    return _accuracy(spec, params, tutorials.sum_batch(spec, np.random.default_rng(2000), 1000))


def _echo_loss(spec: StackSpec, params: dict) -> float:
    x, y = tutorials.echo_stream(np.random.default_rng(2001), 5, 600)
    batch = Batch(x[..., None].astype(np.float64), y.astype(np.int64), tutorials._zero_states(spec, 5))
    return float(stack.forward(spec, params, batch)[0]["loss"]["loss"])


def _addition_accuracy(spec: StackSpec, params: dict) -> float:
    return _accuracy(spec, params, tutorials.all_sums(spec))


def _lm_perplexity(spec: StackSpec, params: dict, batch: int = 20, window: int = 35) -> float:
    """exp(mean cross-entropy per token) over the corpus's last 10%, windows of 35 with the state carried, no dropout."""
    ids = tutorials.lm_corpus().ids()
    states = tutorials._zero_states(spec, batch)
    total, tokens = 0.0, 0
    for x, y in tutorials.lm_windows(ids[int(len(ids) * 0.9):], batch, window):
        results, _ = stack.forward(spec, params, Batch(x, y, states))
        total += float(results["loss"]["loss"]) * batch  # summed over steps, averaged over the batch
        tokens += x.size
        states = results["state"]
    return float(np.exp(total / tokens))


REPRODUCTIONS: dict[str, Reproduction] = {
    "sum": Reproduction(
        "seeds/000", "accuracy 0.98 after 5000 batches of 100",
        "accuracy (within 0.05) on 1000 fresh sequences from zero states",
        tutorials.sum_spec,
        lambda s: dataclasses.replace(s, steps=5000, batch_size=100, init=tutorials.sum_tutorial_init),
        _sum_accuracy, 0.95),
    "echo": Reproduction(
        "seeds/001", "the loss falls to near zero (its plot, 666 batches of 5 x 15 per epoch)",
        "cross-entropy per step on a fresh stream of 5 x 600 bits from zero states",
        tutorials.echo_spec, lambda s: dataclasses.replace(s, steps=666, batch_size=5), _echo_loss),
    "binary_addition": Reproduction(
        "seeds/003", "the sums right at the end of 10000 one-sample steps (its printed samples)",
        "share of all 16384 sums a + b (a, b < 128) with every bit right",
        tutorials.addition_spec, lambda s: dataclasses.replace(s, steps=10000, batch_size=1), _addition_accuracy,
        0.95),
    "lm": Reproduction(
        "seeds/004", "perplexity on PTB after 2 epochs (the text prints it; PTB cannot be downloaded here)",
        "perplexity on the corpus's last 10% (unigram perplexity of the corpus: about 228)",
        lambda: tutorials.lm_spec(hidden=200),
        lambda s: dataclasses.replace(s, steps=2 * tutorials.lm_epoch_steps(20, 35), batch_size=20,
                                      make_data=functools.partial(tutorials.lm_data, window=35, random_start=False)),
        _lm_perplexity),
}


def headline(name: str, figures: dict[str, float]) -> list[str]:
    """The report's lines: the tutorial's claim, then each side's figure and whether it reaches the target."""
    r = REPRODUCTIONS[name]
    lines = [f"reproduce {r.tutorial}: the tutorial reports {r.claim}; ours: {r.figure}"]
    for side, value in figures.items():
        mark = "" if r.target is None else (" (reaches >= %g)" % r.target if value >= r.target else
                                            " (below %g)" % r.target)
        lines.append(f"  {side}: {value:.4g}{mark}")
    return lines


def reproduce(name: str, frameworks: tuple[str, ...], dtype: str, seed: int,
              progress: Callable[[str], None] = lambda s: None, steps: int | None = None) -> Report:
    """Train ``name`` for its tutorial's steps (or ``steps``) on every side, verify as ``compare`` does, and add
    the figures."""
    from verify import training, zoo
    from verify.odd_one_out import odd_one_out
    if name not in REPRODUCTIONS:
        raise ValueError(f"--reproduce applies to the tutorials' models ({', '.join(REPRODUCTIONS)}); got {name!r}")
    r = REPRODUCTIONS[name]
    spec = r.spec()
    setup = r.setup(zoo.get(name).train)
    trained: dict[str, dict] = {}
    report = training.compare_trained(name, spec, setup, frameworks, dtype, seed, progress, steps=steps,
                                      trained_out=trained)
    progress("measuring the tutorial's figure on every side's trained weights")
    figures = {side: r.measure(spec, params) for side, params in trained.items()}
    notes = report.notes + tuple(headline(name, figures)) + tuple(odd_one_out(report.checks))
    return dataclasses.replace(report, notes=notes)
