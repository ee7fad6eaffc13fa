"""The report as JUnit XML for CI: one test suite per compared pair, one test case per check."""
from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET

from verify import render
from verify.report import Check, Report

# XML 1.0 cannot hold these characters at all, not even escaped: a name or note carrying one would make the whole
# file unreadable to the CI server, so they are written as visible escapes instead.
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _text(value: object) -> str:
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", str(value))


def _pair(c: Check) -> str:
    """The compared pair as people read it: "torch vs reference", "tensorflow vs torch"."""
    return c.framework.replace("~", " vs ") if "~" in c.framework else f"{c.framework} vs {c.against}"


def _used(c: Check) -> str:
    return f"{c.used:.3g}" if math.isfinite(c.used) else "inf"


def _message(c: Check) -> str:
    """One line, as the terminal's verdict lists a failing check."""
    where = f" at index {c.where}" if c.where else ""
    step = f", first bad step {c.first_bad_step}" if c.first_bad_step is not None else ""
    gate = f", gate {','.join(c.bad_gates) or c.gate}" if c.gate else ""
    layer = f" ({c.layer})" if c.layer else ""
    return (f"{c.quantity} {c.name}{layer}: max abs error {render._num(c.max_abs)}{where}{step}{gate} exceeds atol "
            f"{render._num(c.allowed.atol)} + rtol {render._num(c.allowed.rtol)}")


def _row(c: Check) -> str:
    """The check's table row, one field a line, so that a CI page shows it without the JSON report."""
    fields = [("pair", _pair(c)), ("quantity", c.quantity), ("name", c.name)]
    if c.layer:
        fields.append(("layer", c.layer))
    fields += [("shape", "x".join(map(str, c.shape)) or "()"), ("dtype", c.dtype),
               ("max_abs", render._num(c.max_abs)), ("where", str(c.where) if c.where else "-"),
               ("max_rel", render._num(c.max_rel)), ("norm_rel", render._num(c.norm_rel)), ("used", _used(c)),
               ("atol", render._num(c.allowed.atol)), ("rtol", render._num(c.allowed.rtol)),
               ("bad", f"{c.n_bad}/{c.n_total}"),
               ("first bad step", "-" if c.first_bad_step is None else str(c.first_bad_step)),
               ("gate", ",".join(c.bad_gates) or c.gate or "-")]
    if c.value is not None:
        fields.append(("value", f"{c.value:.10g} ({c.against}: {c.reference_value:.10g})"))
    fields += [("diagnosis", c.diagnosis or "-"), ("allowance", c.allowed.why)]
    width = max(len(k) for k, _ in fields)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in fields)


def _suite_time(report: Report, framework: str) -> float | None:
    """The seconds the report attributes to one framework ("torch: build+run", "training: torch"); None where it
    attributes none, as for a framework-vs-framework pair, whose checks cost nothing of their own."""
    mine = [v for k, v in report.timings.items()
            if k.startswith(f"{framework}: ") or k.endswith(f": {framework}")]
    return sum(mine) if mine else None


def _timed_pair(report: Report, framework: str) -> str:
    """The one suite that carries a framework's seconds: its pair against the reference where it has one, else its
    first. Its parameter checks ("vs built weights") come from the same run, and counting the run twice would make
    the suites add up to more than the run took."""
    mine = [c for c in report.checks if c.framework == framework]
    return _pair(next((c for c in mine if c.against == "reference"), mine[0]))


def junit(report: Report) -> str:
    """JUnit XML: a <testsuite> per compared pair (classname the pair), a <testcase> "quantity name" per check, a
    <failure> carrying the table row for each failing one, the verdict and the report's facts as properties; the
    same report gives the same text."""
    pairs = list(dict.fromkeys(_pair(c) for c in report.checks))
    failed = len(report.failures)
    # no time on the root: the report's phases overlap (training holds each framework's training), so their sum
    # would overstate the run; each phase is a property below
    root = ET.Element("testsuites", {
        "name": _text(f"rnn-equivalence model {report.model} dtype {report.dtype} seed {report.seed}"),
        "tests": str(len(report.checks)), "failures": str(failed), "errors": "0"})
    for pair in pairs:
        mine = [c for c in report.checks if _pair(c) == pair]
        attrs = {"name": _text(pair), "tests": str(len(mine)), "failures": str(sum(not c.ok for c in mine)),
                 "errors": "0", "skipped": "0"}
        framework = mine[0].framework
        seconds = _suite_time(report, framework) if _timed_pair(report, framework) == pair else None
        if seconds is not None:
            attrs["time"] = f"{seconds:.3f}"
        suite = ET.SubElement(root, "testsuite", attrs)
        props = ET.SubElement(suite, "properties")
        facts = [("verdict", report.verdict), ("model", report.model), ("dtype", report.dtype),
                 ("seed", str(report.seed)), ("frameworks", ",".join(report.frameworks))]
        facts += [(f"version {k}", v) for k, v in report.versions.items()]
        facts += [(f"time {k}", f"{v:.3f}") for k, v in report.timings.items()]
        facts += [(f"note {i + 1}", n) for i, n in enumerate(report.notes)]
        for name, value in facts:
            ET.SubElement(props, "property", {"name": _text(name), "value": _text(value)})
        for c in mine:
            case = ET.SubElement(suite, "testcase", {"classname": _text(pair), "name": _text(f"{c.quantity} {c.name}")})
            if not c.ok:
                failure = ET.SubElement(case, "failure", {"message": _text(_message(c)), "type": "mismatch"})
                failure.text = _text(_row(c))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
