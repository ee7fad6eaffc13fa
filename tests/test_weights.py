"""Parameter comparison between two files: each classic porting bug, injected into the canonical weights, is named."""
import numpy as np
import pytest

from adapters.tables import permute_blocks
from reference import stack
from reference.layers import Dense, Embedding, Recurrent
from reference.params import init_params
from reference.stack import StackSpec
from verify import weights
from verify.render import failures
from verify.report import Report

SPEC = StackSpec("m", 0, (Embedding("emb", 6, 3), Recurrent("lstm", "lstm", 3, bidirectional=True),
                          Recurrent("gru", "gru", 4), Recurrent("srnn", "simple_rnn", 4), Dense("head", 2)))


def _params() -> dict:
    p = init_params(SPEC, np.random.default_rng(0))
    return {k: v.astype(np.float32).astype(np.float64) for k, v in p.items()}  # as stored in a float32 file


def _checks(got: dict, want: dict) -> list:
    return weights.compare_params(got, want, "torch", "tensorflow", "float32", lambda n: stack.gate_blocks(SPEC, n),
                                  lambda n: (f"torch[{n}]", f"Keras[{n}]"))


def _swap_dirs(p: dict) -> None:
    for s in ("kernel", "recurrent_kernel", "bias"):
        p[f"lstm/fw/{s}"], p[f"lstm/bw/{s}"] = p[f"lstm/bw/{s}"], p[f"lstm/fw/{s}"]


BUGS = {
    # only a square tensor can be stored untransposed without a shape error: a simple RNN's recurrent kernel
    "transposed": ("srnn/fw/recurrent_kernel",
                   lambda p: p.update({"srnn/fw/recurrent_kernel": p["srnn/fw/recurrent_kernel"].T}),
                   "torch[srnn/fw/recurrent_kernel] holds Keras[srnn/fw/recurrent_kernel] transposed"),
    "lstm gates": ("lstm/fw/kernel", lambda p: p.update({"lstm/fw/kernel": permute_blocks(p["lstm/fw/kernel"], (0, 2, 1, 3))}),
                   "gate blocks permuted: in the canonical order it holds gates (i, g, f, o) where (i, f, g, o) belong"),
    "gru gates": ("gru/fw/bias", lambda p: p.update({"gru/fw/bias": permute_blocks(p["gru/fw/bias"], (1, 0, 2))}),
                  "gate blocks permuted: in the canonical order it holds gates (r, z, h) where (z, r, h) belong"),
    "bias twice": ("lstm/bw/bias", lambda p: p.update({"lstm/bw/bias": 2 * p["lstm/bw/bias"]}),
                   "in both bias_ih and bias_hh"),
    "bias nowhere": ("head/bias", lambda p: p.update({"head/bias": 0 * p["head/bias"]}), "in neither"),
    "directions": ("lstm/fw/recurrent_kernel", _swap_dirs, "directions swapped"),
    "forget_bias": ("lstm/fw/bias", lambda p: p.update({"lstm/fw/bias": p["lstm/fw/bias"] + np.repeat([0, 1.0, 0, 0], 3)}),
                    "forget-gate block moved by +1: a run-time forget_bias"),
    "rows shifted": ("emb/embeddings", lambda p: p.update({"emb/embeddings": np.roll(p["emb/embeddings"], 1, axis=0)}),
                     "rows shifted by 1"),
}


@pytest.mark.parametrize("bug", BUGS)
def test_each_bug_is_named_at_its_parameter(bug: str) -> None:
    name, inject, words = BUGS[bug]
    want = _params()
    got = dict(want)
    inject(got)
    checks = _checks(got, want)
    report = Report("m", "float32", 0, ("torch",), {}, tuple(checks))
    failed = {c.name: c for c in report.failures}
    assert name in failed and words in (failed[name].diagnosis or ""), failures(report)


def test_a_correct_port_passes_and_a_split_bias_is_one_rounding() -> None:
    want = _params()
    got = dict(want)
    split = np.float32(0.3) * want["lstm/fw/bias"].astype(np.float32)
    got["lstm/fw/bias"] = split.astype(np.float64) + (want["lstm/fw/bias"].astype(np.float32) - split).astype(np.float64)
    report = Report("m", "float32", 0, ("torch",), {}, tuple(_checks(got, want)))
    assert report.verdict == "equivalent", failures(report)


def test_an_unexplained_difference_says_so() -> None:
    want = _params()
    got = dict(want, **{"head/kernel": want["head/kernel"] + 1e-3})
    bad = [c for c in _checks(got, want) if not c.ok]
    assert [c.name for c in bad] == ["head/kernel"] and "no known porting bug" in bad[0].diagnosis
