"""The HTML report: a failing tensor keeps its error per step and per gate, the page shows them as embedded plots,
and the terminal summary of an equivalent run stays short."""
import re
import sys

import numpy as np
import pytest

from verify.compare import compare_tensor
from verify.report import Allowance, Report

ALLOW = Allowance(1e-6, 1e-6, "test allowance <&>", "test rule")
GATES = ("i", "f", "c", "o")
UNITS = 3


def _diverging() -> tuple:
    """A (batch, time, 4 gates x units) tensor whose gate f parts from the reference at step 3 and grows."""
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((2, 8, len(GATES) * UNITS))
    x = ref + 1e-8 * rng.standard_normal(ref.shape)  # noise well inside the allowance everywhere
    x[:, 3:, UNITS:2 * UNITS] += 1e-5 * 10.0 ** np.arange(5)[None, :, None]
    bad = compare_tensor("torch", "reference", "gradient", "cell<f>", x, ref, ALLOW, "float64", 1, GATES)
    good = compare_tensor("torch", "reference", "output", "hidden", ref, ref, ALLOW, "float64", 1, GATES)
    return bad, good


def _report() -> Report:
    bad, good = _diverging()
    return Report("lstm", "float64", 7, ("torch",), {"numpy": np.__version__}, (good, bad),
                  notes=("a note with <markup>",))


def test_a_failing_check_keeps_where_it_starts_and_which_gate() -> None:
    bad, good = _diverging()
    assert not bad.ok and good.ok
    steps = np.array(bad.step_errors)
    assert len(steps) == 8 and bad.first_bad_step == 3, bad.step_errors
    assert np.all(steps[:3] <= 1) and np.all(steps[3:] > 1), bad.step_errors
    assert np.all(np.diff(steps[3:]) > 0), bad.step_errors  # it grows
    assert bad.gate_names == GATES and len(bad.gate_errors) == len(GATES), (bad.gate_names, bad.gate_errors)
    assert int(np.argmax(bad.gate_errors)) == GATES.index("f"), bad.gate_errors
    assert max(bad.gate_errors) == bad.used, (bad.gate_errors, bad.used)
    # a passing check carries no arrays: the report stays small
    assert (good.step_errors, good.gate_errors, good.gate_names) == ((), (), ()), good


def test_page_embeds_one_plot_per_series_and_nothing_external() -> None:
    from verify.html import page
    report = _report()
    text = page(report)
    assert "cell&lt;f&gt;" in text and "cell<f>" not in text, text[:2000]  # the name, escaped
    assert "a note with &lt;markup&gt;" in text and "test allowance &lt;&amp;&gt;" in text
    images = re.findall(r'<img src="data:image/png;base64,[A-Za-z0-9+/=]+"', text)
    assert len(images) == 2, len(images)  # step and gate plots of the one failing tensor
    rest = re.sub(r'data:image/png;base64,[A-Za-z0-9+/=]+', "", text)
    assert "http" not in rest and "<script" not in rest and "<link" not in rest, \
        [line for line in rest.splitlines() if "http" in line or "<script" in line or "<link" in line]
    rows = re.findall(r'<tr(?: class="bad")?><td', text)
    assert rows == ["<tr><td", '<tr class="bad"><td'], rows  # one row per check, the failing one marked
    assert text == page(report), "the same report gave two different pages"


def test_passing_report_has_no_plots() -> None:
    from verify.html import page
    _, good = _diverging()
    text = page(Report("lstm", "float64", 7, ("torch",), {}, (good,)))
    assert "data:image/png" not in text and "equivalent" in text and "hidden" in text, text


def test_cli_writes_the_page(tmp_path, capsys) -> None:
    from verify.cli import main
    path = tmp_path / "report.html"
    rc = main(["compare", "--model", "lstm", "--frameworks", "torch", "--html", str(path), "--quiet"])
    out = capsys.readouterr()
    assert rc == 0, out.out + out.err
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]  # written whole, no temporary file left
    text = path.read_text()
    assert text.startswith("<!DOCTYPE html>") and "<table>" in text and "<th>framework</th>" in text, text[:2000]
    assert "equivalent" in text and "data:image/png" not in text, text[:2000]


def test_cli_writes_the_page_with_plots_on_a_mismatch(tmp_path, capsys, monkeypatch) -> None:
    """The torch adapter made to drift from step 5 on: exit 1, and the page plots where it starts."""
    from adapters import torch_stack
    from verify.cli import main
    real = torch_stack.run

    def drifting(*args, **kwargs):
        results = real(*args, **kwargs)
        out = results["output"]["prediction"].copy()
        out[:, 5:] += 1e-2
        results["output"]["prediction"] = out
        return results
    monkeypatch.setattr(torch_stack, "run", drifting)
    path = tmp_path / "report.html"
    rc = main(["compare", "--model", "lstm", "--frameworks", "torch", "--html", str(path), "--quiet"])
    out = capsys.readouterr()
    assert rc == 1, out.out + out.err
    text = path.read_text()
    assert "mismatch" in text and 'id="check-' in text and '<img src="data:image/png;base64,' in text, text[:3000]


def test_equivalent_summary_fits_in_30_lines(capsys) -> None:
    from verify.cli import main
    rc = main(["compare", "--model", "lstm", "--frameworks", "torch", "--quiet"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert len(out.splitlines()) <= 30, out


@pytest.mark.parametrize("argv", [
    ["compare", "--model", "lstm", "--frameworks", "torch"],
    ["port", "model.keras", "--to", "torch", "-o", "out.pt"],
])
def test_html_problems_exit_2_before_any_work(argv, tmp_path, capsys, monkeypatch) -> None:
    from verify.cli import main
    rc = main(argv + ["--html", str(tmp_path / "no" / "r.html"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("error: cannot write HTML report") and len(err.splitlines()) == 1, err
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if it were not installed
    rc = main(argv + ["--html", str(tmp_path / "r.html"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "pip install matplotlib" in err and len(err.splitlines()) == 1, err
    assert list(tmp_path.iterdir()) == [], list(tmp_path.iterdir())
