"""The report as GitHub-flavoured Markdown for a CI job summary ($GITHUB_STEP_SUMMARY)."""
from __future__ import annotations

import math
import re

from verify import render
from verify.report import Check, Report

# A job summary is capped (1 MiB on GitHub) and a training run can fail thousands of step checks: the first rows
# say where it starts, the JSON report keeps every one.
MAX_ROWS = 50

# Characters Markdown would read as markup in prose (emphasis, links, HTML, strikethrough, table cells).
_SPECIAL = re.compile(r"([\\`*_\[\]<>|~&])")


def _text(value: object, line_start: bool = False) -> str:
    """Prose, shown as written: markup characters escaped, one line (a cell cannot hold a line break)."""
    s = _SPECIAL.sub(r"\\\1", " ".join(str(value).split()))
    if line_start:  # at the start of a line (a list item's text) these open a heading or another list
        s = "\\" + s if s[:1] in ("#", "+", "-") else re.sub(r"^(\d+)([.)])", r"\1\\\2", s)
    return s


def _code(value: object) -> str:
    """A name as code; GFM splits table cells on | before reading code spans, so | is escaped there too."""
    s = " ".join(str(value).split())
    fence = "`" * (max((len(run) for run in re.findall(r"`+", s)), default=0) + 1)
    pad = " " if s.startswith("`") or s.endswith("`") else ""
    return f"{fence}{pad}{s}{pad}{fence}".replace("|", "\\|")


def _pair(c: Check) -> str:
    return c.framework.replace("~", " vs ") if "~" in c.framework else f"{c.framework} vs {c.against}"


def _used(v: float) -> str:
    return f"{v:.3g}" if math.isfinite(v) else "inf"


def _table(header: list[str], rows: list[list[str]], right: set[str] = frozenset()) -> list[str]:
    lines = ["| " + " | ".join(header) + " |",
             "| " + " | ".join("---:" if h in right else "---" for h in header) + " |"]
    return lines + ["| " + " | ".join(r) + " |" for r in rows]


def _pairs(report: Report) -> list[str]:
    """Per compared pair: checks, failed, the worst share of the allowance used and the worst normwise error (over
    the measured tensors: a parameter is compared bit for bit, its norm_rel says nothing of the computation)."""
    rows = []
    for pair in dict.fromkeys(_pair(c) for c in report.checks):
        mine = [c for c in report.checks if _pair(c) == pair]
        worst = max(mine, key=lambda c: c.used)
        measured = [c for c in mine if c.quantity != "parameter"]
        norm = max(measured, key=lambda c: c.norm_rel, default=None)
        rows.append([_text(pair), str(len(mine)), str(sum(not c.ok for c in mine)),
                     f"{_used(worst.used)} ({_text(worst.quantity)} {_code(worst.name)})",
                     f"{render._num(norm.norm_rel)} ({_text(norm.quantity)} {_code(norm.name)})" if norm else "-"])
    return _table(["pair", "checks", "failed", "worst used", "worst norm_rel"], rows, {"checks", "failed"})


def _failures(report: Report) -> list[str]:
    bad = report.failures
    rows = []
    for c in bad[:MAX_ROWS]:
        name = _code(c.name) + (f" ({_text(c.layer)})" if c.layer else "")
        rows.append([_text(_pair(c)), _text(c.quantity), name, render._num(c.max_abs), render._num(c.norm_rel),
                     _used(c.used), render._num(c.allowed.atol), render._num(c.allowed.rtol), f"{c.n_bad}/{c.n_total}",
                     "-" if c.first_bad_step is None else str(c.first_bad_step),
                     _text(",".join(c.bad_gates) or c.gate or "-"), _text(c.diagnosis) if c.diagnosis else "-"])
    lines = [f"### Failing checks ({len(bad)} of {len(report.checks)})", ""]
    lines += _table(["pair", "quantity", "name", "max_abs", "norm_rel", "used", "atol", "rtol", "bad", "first step",
                     "gate", "diagnosis"], rows, {"max_abs", "norm_rel", "used", "atol", "rtol", "bad", "first step"})
    if len(bad) > MAX_ROWS:
        lines += ["", f"... and {len(bad) - MAX_ROWS} more: the JSON report (--json) lists every check."]
    return lines


def markdown(report: Report) -> str:
    """A heading with the model, dtype, seed and verdict, the versions, a table of compared pairs, the failing rows
    with their diagnoses, loss and accuracy, the notes and the timings; the same report gives the same text."""
    if report.failures:
        verdict = f"**mismatch**: {len(report.failures)} of {len(report.checks)} checks failed"
    else:
        verdict = f"**equivalent**: all {len(report.checks)} checks passed"
    lines = [f"## model {_text(report.model)}, dtype {_text(report.dtype)}, seed {report.seed}: {report.verdict}",
             "", verdict, "",
             f"frameworks: {_text(', '.join(report.frameworks))}"]
    if report.versions:
        lines[-1] += "; versions: " + _text(", ".join(f"{k} {v}" for k, v in report.versions.items()))
    if report.checks:
        lines += ["", "### Compared pairs", ""] + _pairs(report)
    if report.failures:
        lines += [""] + _failures(report)
    scalars = [c for c in report.checks if c.quantity in ("loss", "accuracy") and c.value is not None
               and "~" not in c.framework]
    if scalars:
        lines += ["", "### Loss and accuracy", ""]
        rows = [[_text(_pair(c)), _text(c.quantity if c.name == c.quantity else f"{c.quantity} {c.name}"),
                 f"{c.value:.10g}", f"{c.reference_value:.10g}"] for c in scalars]
        lines += _table(["pair", "quantity", "value", "other side"], rows, {"value", "other side"})
    if report.notes:
        lines += ["", "### Notes", ""] + [f"- {_text(n, line_start=True)}" for n in report.notes]
    if report.timings:
        lines += ["", "### Timings", ""]
        lines += _table(["phase", "seconds"], [[_text(k), f"{v:.2f}"] for k, v in report.timings.items()], {"seconds"})
    return "\n".join(lines) + "\n"
