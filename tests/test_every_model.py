"""compare --all: one line per model, one verdict, exit codes by the worst outcome."""
from __future__ import annotations

import json

import pytest

from verify import cli, every_model
from verify.report import Allowance, Check, Report


def _report(model: str, ok: bool) -> Report:
    check = Check(framework="torch", against="reference", quantity="output", name="prediction", shape=(3, 2),
                  dtype="float32", max_abs=0.0 if ok else 1.0, max_rel=0.0, norm_rel=0.0, ulp=0.0, where=(0, 0),
                  n_bad=0 if ok else 1, n_total=6, allowed=Allowance(1e-6, 1e-5, "test"), ok=ok,
                  first_bad_step=None if ok else 4, used=0.1 if ok else 3.0)
    return Report(model, "float32", 0, ("torch",), {}, (check,), (), {})


def test_verdict_is_the_worst_outcome() -> None:
    ok = every_model.Outcome("a", 1.0, _report("a", True))
    bad = every_model.Outcome("b", 1.0, _report("b", False))
    broken = every_model.Outcome("c", 1.0, error="torch: building raised RuntimeError: boom")
    assert every_model.verdict([ok]) == "equivalent"
    assert every_model.verdict([ok, broken]) == "could not complete"
    assert every_model.verdict([broken, bad, ok]) == "mismatch"
    text = every_model.summary([ok, bad, broken], "float32", 0)
    lines = text.splitlines()
    assert len(lines) == 5, text
    assert "first: torch vs reference output prediction step 4" in lines[2], text
    assert "boom" in lines[3], text
    assert lines[-1].startswith("verdict: mismatch (1 equivalent, 1 mismatch, 1 could not complete; 3 models)"), text


def test_the_line_shows_single_sides_worst_and_pairs_apart() -> None:
    """A pair's share (by construction near 1 in trained pairs) does not stand as the model's worst: the line gives
    the worst check of a single side, and the pairs' largest share after it."""
    import dataclasses
    single = _report("a", True).checks[0]
    pair = dataclasses.replace(single, framework="tensorflow~torch", against="torch", name="trained", used=0.97)
    report = dataclasses.replace(_report("a", True), checks=(single, pair))
    text = every_model.line(every_model.Outcome("a", 1.0, report), 5)
    assert "worst used 0.1 (torch output prediction), pairs 0.97" in text, text


@pytest.mark.parametrize("extra", [["--model", "rnn"], ["--optimizer", "adam"], ["--table"], ["--html", "x.html"],
                                   ["--frameworks", "jax"]])
def test_usage_errors_exit_2(extra: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["compare", "--all", *extra]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: "), err


def test_all_runs_each_model_once_and_writes_json(tmp_path, capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from verify import engine, zoo
    calls = []

    def fake(name, frameworks, dtype, seed, progress=lambda s: None, optimizer=None):
        calls.append((name, frameworks))
        if name == "gru":
            raise RuntimeError("kaput")
        return _report(name, name != "lstm")
    monkeypatch.setattr(engine, "compare_model", fake)
    out = tmp_path / "all.json"
    code = cli.main(["compare", "--all", "--quiet", "--frameworks", "torch", "--json", str(out)])
    printed = capsys.readouterr().out
    assert code == cli.EXIT_MISMATCH, printed
    assert [n for n, _ in calls] == [n for n, e in zoo.MODELS.items() if "torch" in e.frameworks]
    assert all(f == ("torch",) for _, f in calls)
    data = json.loads(out.read_text())
    assert data["verdict"] == "mismatch"
    assert data["models"]["gru"]["verdict"] == "error" and "kaput" in data["models"]["gru"]["error"]
    assert data["models"]["lstm"]["verdict"] == "mismatch"
    assert len(printed.splitlines()) == len(calls) + 2, printed
