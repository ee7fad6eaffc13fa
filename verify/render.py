"""Renderers: the report as a table for people and as JSON for machines."""
from __future__ import annotations

import json
import math

from verify.report import Check, Report


def _num(v: float | None) -> str:
    if v is None:
        return "inf"
    if v == 0:
        return "0"
    return f"{v:.2e}"


def _row(c: Check) -> list[str]:
    step = "-" if c.first_bad_step is None else str(c.first_bad_step)
    gate = c.gate or "-"
    if c.bad_gates:
        gate = ",".join(c.bad_gates)
    return [c.framework, c.quantity, c.name, "x".join(map(str, c.shape)) or "()", _num(c.max_abs), _num(c.max_rel),
            _num(c.norm_rel), f"{c.ulp:.3g}" if math.isfinite(c.ulp) else "inf", _num(c.allowed.atol),
            _num(c.allowed.rtol), f"{c.n_bad}/{c.n_total}", step, gate, "ok" if c.ok else "MISMATCH"]


HEADER = ["framework", "quantity", "name", "shape", "max_abs", "max_rel", "norm_rel", "ulp", "atol", "rtol", "bad",
          "step", "gate", "result"]


def _worst(report: Report) -> list[str]:
    """Per compared pair, the tensors with the largest normwise and elementwise relative errors."""
    lines = []
    measured = [c for c in report.checks if c.quantity not in ("parameter", "accuracy")]
    for pair in dict.fromkeys((c.framework, c.against) for c in measured):
        mine = [c for c in measured if (c.framework, c.against) == pair]
        norm = max(mine, key=lambda c: c.norm_rel)
        elem = max(mine, key=lambda c: math.inf if c.max_rel is None else c.max_rel)
        label = pair[0].replace("~", " vs ") if "~" in pair[0] else f"{pair[0]} vs {pair[1]}"
        lines.append(f"  worst {label}: norm_rel {_num(norm.norm_rel)} ({norm.quantity} {norm.name}), "
                     f"max_rel {_num(elem.max_rel)} ({elem.quantity} {elem.name})")
    return lines


def table(report: Report) -> str:
    rows = [HEADER] + [_row(c) for c in report.checks]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER))]
    lines = [f"model {report.model} | dtype {report.dtype} | seed {report.seed} | "
             + ", ".join(f"{k} {v}" for k, v in report.versions.items())]
    lines += [f"  {n}" for n in report.notes]
    for i, r in enumerate(rows):
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines.append("max_rel: largest |x - ref| / |ref| over the elements; norm_rel: max |x - ref| / max |ref| "
                 "(normwise relative error)")
    lines += _worst(report)
    lines.append("allowances (an element passes when |x - ref| <= atol + rtol*|ref|; each check's reason is in the JSON):")
    for rule in dict.fromkeys(c.allowed.rule for c in report.checks):
        lines.append(f"  {rule}")
    scalars = [c for c in report.checks if c.value is not None]
    if scalars:
        lines.append("values (as computed | as the other side computed or recomputed them):")
        for c in scalars:
            lines.append(f"  {c.framework} {c.quantity} {c.name}: {c.value:.10g} | "
                         f"{c.against} {c.reference_value:.10g}")
    if report.timings:
        lines.append("time: " + ", ".join(f"{k} {v:.2f}s" for k, v in report.timings.items()))
    lines.append(failures(report) if report.failures else f"verdict: equivalent ({len(report.checks)} checks)")
    return "\n".join(lines)


def summary(report: Report) -> str:
    """What a person reads first: per compared pair the worst share of its allowance used and the worst
    normwise error, the scalar values, the timings, and the verdict with the failing rows and diagnoses."""
    lines = [f"model {report.model} | dtype {report.dtype} | seed {report.seed} | "
             + ", ".join(f"{k} {v}" for k, v in report.versions.items())]
    lines += [f"  {n}" for n in report.notes]
    measured = [c for c in report.checks if c.quantity != "parameter"]
    for pair in dict.fromkeys((c.framework, c.against) for c in report.checks):
        mine = [c for c in report.checks if (c.framework, c.against) == pair]
        label = pair[0].replace("~", " vs ") if "~" in pair[0] else f"{pair[0]} vs {pair[1]}"
        worst = max(mine, key=lambda c: c.used)
        norm = max((c for c in mine if c in measured), key=lambda c: c.norm_rel, default=None)
        tail = f"; worst norm_rel {_num(norm.norm_rel)} ({norm.quantity} {norm.name})" if norm else ""
        lines.append(f"  {label}: {len(mine)} checks, {sum(not c.ok for c in mine)} failed; worst used "
                     f"{worst.used:.3g} of its allowance ({worst.quantity} {worst.name}){tail}")
    scalars = [c for c in report.checks if c.quantity in ("loss", "accuracy") and c.value is not None
               and "~" not in c.framework]
    lines += [f"  {c.framework} {c.quantity} {c.name}: {c.value:.10g} | {c.against} {c.reference_value:.10g}"
              for c in scalars]
    if report.timings:
        lines.append("time: " + ", ".join(f"{k} {v:.2f}s" for k, v in report.timings.items()))
    lines.append(failures(report) if report.failures else f"verdict: equivalent ({len(report.checks)} checks; "
                                                            "--table lists every one)")
    return "\n".join(lines)


def failures(report: Report, limit: int = 10) -> str:
    """The verdict line and the first failing checks, each with its place, its numbers and its diagnosis."""
    bad = report.failures
    lines = [f"verdict: mismatch ({len(bad)} of {len(report.checks)} checks failed)"]
    lines += [f"  {n}" for n in report.notes if n.startswith("the reference is the odd one out")]
    for c in bad[:limit]:
        where = f" at index {c.where}" if c.where else ""
        step = f", first bad step {c.first_bad_step}" if c.first_bad_step is not None else ""
        gate = f", gate {','.join(c.bad_gates) or c.gate}" if c.gate else ""
        layer = f" ({c.layer})" if c.layer else ""
        lines.append(f"  {c.framework} vs {c.against}: {c.quantity} {c.name}{layer}: max abs error {_num(c.max_abs)}"
                     f"{where}{step}{gate} exceeds atol {_num(c.allowed.atol)} + rtol {_num(c.allowed.rtol)}")
        if c.diagnosis:
            lines.append(f"    -> {c.diagnosis}")
    if len(bad) > limit:
        lines.append(f"  ... and {len(bad) - limit} more (the table above lists every check)")
    return "\n".join(lines)


def _clean(value: object) -> object:
    """JSON has no inf or NaN: write them as strings, and tuples as lists."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def to_json(report: Report) -> str:
    return json.dumps(_clean(report.to_dict()), indent=2, sort_keys=False)
