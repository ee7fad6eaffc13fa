"""The Markdown summary for a CI job: the verdict, the compared pairs, the failing rows with diagnoses, | escaped."""
import re
from dataclasses import replace

import numpy as np

from verify import markdown as md
from verify.compare import compare_tensor
from verify.report import Allowance, Report

ALLOW = Allowance(1e-6, 1e-6, "test allowance", "test rule")


def _report() -> Report:
    rng = np.random.default_rng(1)
    ref = rng.standard_normal((3, 5, 6))
    x = ref.copy()
    x[:, 2:, :3] += 1e-3
    bad = compare_tensor("torch", "reference", "output", "rnn|0", x, ref, ALLOW, "float32", 1, ("z", "r", "h"))
    bad = replace(bad, diagnosis="torch rnn.weight_hh_l0 holds Keras gru.recurrent_kernel with gates r|z swapped")
    good = compare_tensor("torch", "reference", "gradient", "head/kernel", ref, ref, ALLOW, "float32")
    loss = compare_tensor("torch", "reference", "loss", "loss", np.array(0.25), np.array(0.25), ALLOW, "float32")
    return Report("gru", "float32", 3, ("torch",), {"python": "3.11", "torch": "2.13.0"}, (good, bad, loss),
                  notes=("# not a heading: a note | with a pipe and *stars*",),
                  timings={"imports": 1.5, "torch: build+run": 0.25})


def _cells(line: str) -> list[str]:
    """A table row's cells as GFM splits them: on | not preceded by a backslash."""
    return [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]


def test_failing_report_has_verdict_pairs_failing_row_and_escaped_pipes() -> None:
    report = _report()
    text = md.markdown(report)
    lines = text.splitlines()
    assert lines[0] == "## model gru, dtype float32, seed 3: mismatch", text
    assert "**mismatch**: 1 of 3 checks failed" in text and "torch 2.13.0" in text, text
    pairs = [l for l in lines if l.startswith("| torch vs reference | 3 |")]
    assert len(pairs) == 1 and _cells(pairs[0])[2] == "1", (pairs, text)
    bad = report.failures[0]
    rows = [l for l in lines if "rnn\\|0" in l and "| output |" in l]
    assert len(rows) == 1, text
    cells = _cells(rows[0])
    header = _cells(next(l for l in lines if l.startswith("| pair | quantity | name |")))
    assert len(cells) == len(header), (header, cells)  # the escaped pipes split no cell
    row = dict(zip(header, cells))
    assert row["name"] == "`rnn\\|0`" and row["first step"] == "2" and row["gate"] == "z,r", row
    assert row["max_abs"] == f"{bad.max_abs:.2e}" and row["used"] == f"{bad.used:.3g}", row
    assert row["bad"] == f"{bad.n_bad}/{bad.n_total}" and row["atol"] == "1.00e-06", row
    assert row["diagnosis"] == "torch rnn.weight\\_hh\\_l0 holds Keras gru.recurrent\\_kernel with gates r\\|z swapped"
    assert "- \\# not a heading: a note \\| with a pipe and \\*stars\\*" in lines, text
    assert "| torch vs reference | loss | 0.25 | 0.25 |" in text and "| imports | 1.50 |" in text, text
    unescaped = [l for l in lines if not l.startswith("|") and re.search(r"(?<!\\)\|", l)]
    assert not unescaped, unescaped  # outside tables every | is escaped


def test_equivalent_report_is_short_and_deterministic() -> None:
    report = _report()
    passing = replace(report, checks=tuple(c for c in report.checks if c.ok))
    text = md.markdown(passing)
    assert text == md.markdown(passing)
    assert "**equivalent**: all 2 checks passed" in text and "Failing" not in text, text


def test_a_long_failure_list_is_cut_with_a_pointer_to_the_json() -> None:
    report = _report()
    many = replace(report, checks=tuple(replace(report.failures[0], name=f"t{i}") for i in range(md.MAX_ROWS + 7)))
    text = md.markdown(many)
    assert sum(1 for l in text.splitlines() if "| `t" in l and "| output |" in l) == md.MAX_ROWS, text
    assert "... and 7 more" in text, text
