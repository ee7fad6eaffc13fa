"""The headline command, with its defaults: python -m verify compare --model attention."""
from __future__ import annotations

import json

import pytest

from verify.cli import main


@pytest.mark.parametrize("dtype", ["float64"])
def test_compare_attention_defaults_exit_0_and_report_values(tmp_path, capsys, dtype: str) -> None:
    out = tmp_path / "report.json"
    code = main(["compare", "--model", "attention", "--dtype", dtype, "--json", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.out
    assert "tensorflow: step 100/100" in captured.err and "torch: step 100/100" in captured.err
    report = json.loads(out.read_text())
    for fw in ("tensorflow", "torch"):
        grads = [c for c in report["checks"] if c["framework"] == fw and c["quantity"] == "gradient"]
        assert len(grads) == 22
        for q in ("loss", "accuracy"):
            c = next(c for c in report["checks"] if c["framework"] == fw and c["quantity"] == q and c["name"] == q)
            assert isinstance(c["value"], float) and isinstance(c["reference_value"], float)
            assert f"{fw} {q} {q}: " in captured.out
    worst = max(c["max_rel"] for c in report["checks"] if isinstance(c["max_rel"], float))
    assert worst <= 1e-10, worst
    assert {"imports", "building", "training", "verifying"} <= set(report["timings"])
