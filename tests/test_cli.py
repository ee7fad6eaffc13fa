"""The command line as a user runs it: exit codes, one-line errors, the JSON report."""
import json
import subprocess
import sys

import pytest


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "verify", *args], capture_output=True, text=True, timeout=300)


def test_list_names_the_models_one_per_line() -> None:
    out = _run("list")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0].split()[0] == "rnn"


@pytest.mark.parametrize("args, expected", [
    (("compare", "--model", "nope"), "expected one of: rnn"),
    (("compare", "--model", "rnn", "--dtype", "float16"), "expected one of: float32, float64"),
    (("compare", "--model", "rnn", "--frameworks", "jax"), "expected a comma-separated subset of"),
    (("compare", "--model", "gru", "--frameworks", "tf1"), "tf1 not available for model 'gru'; expected a "
                                                           "comma-separated subset of: tensorflow, torch"),
    (("compare", "--model", "rnn", "--seed", "x"), "invalid int value"),
    (("compare",), "required: --model"),
    (("frobnicate",), "invalid choice"),
])
def test_bad_usage_exits_2_with_one_line(args: tuple, expected: str) -> None:
    out = _run(*args)
    assert out.returncode == 2, (out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0] and "Traceback" not in out.stderr, out.stderr


def test_compare_rnn_float64_json_report(tmp_path) -> None:
    path = tmp_path / "report.json"
    out = _run("compare", "--model", "rnn", "--dtype", "float64", "--seed", "3", "--json", str(path), "--quiet")
    assert out.returncode == 0, out.stdout + out.stderr
    report = json.loads(path.read_text())
    assert (report["verdict"], report["model"], report["dtype"], report["seed"]) == ("equivalent", "rnn", "float64", 3)
    assert {"tensorflow", "torch", "numpy", "keras"} <= set(report["versions"])
    fields = {"framework", "quantity", "name", "shape", "max_abs", "max_rel", "norm_rel", "allowed", "ok",
              "first_bad_step"}
    assert all(fields <= set(c) for c in report["checks"])
    measured = [c for c in report["checks"] if c["quantity"] in ("output", "gradient") and "~" not in c["framework"]]
    assert {c["framework"] for c in measured} == {"tensorflow", "torch", "tf1"}
    worst = max(measured, key=lambda c: c["norm_rel"])  # the float64 criterion (README, tolerance policy)
    assert worst["norm_rel"] <= 1e-12, worst


def test_same_seed_same_report(tmp_path) -> None:
    paths = [tmp_path / "a.json", tmp_path / "b.json"]
    for p in paths:
        out = _run("compare", "--model", "rnn", "--frameworks", "torch", "--seed", "5", "--json", str(p), "--quiet")
        assert out.returncode == 0, out.stderr
    a, b = (json.loads(p.read_text()) for p in paths)
    a.pop("timings"), b.pop("timings")
    assert a == b


def test_unwritable_json_path_exits_2(tmp_path) -> None:
    out = _run("compare", "--model", "rnn", "--frameworks", "torch", "--json", str(tmp_path / "no" / "r.json"),
               "--quiet")
    assert out.returncode == 2 and "cannot write JSON report" in out.stderr, out.stderr
