"""The JUnit XML report: well-formed, one test case per check, the failing check's row in its <failure>."""
import xml.etree.ElementTree as ET
from dataclasses import replace

import numpy as np
import pytest

from verify.compare import compare_tensor
from verify.junit import junit
from verify.report import Allowance, Report

ALLOW = Allowance(1e-6, 1e-6, "test allowance <&>", "test rule")
GATES = ("i", "f", "c", "o")


def _report() -> Report:
    """torch's weights vs those it was built from, torch vs the reference (a gradient parting in gate f from step 3,
    a passing output) and tensorflow~torch."""
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((2, 6, 8))
    x = ref.copy()
    x[:, 3:, 2:4] += 1e-3
    bad = compare_tensor("torch", "reference", "gradient", "rnn/0/fw<kernel>", x, ref, ALLOW, "float64", 1, GATES)
    bad = replace(bad, diagnosis="torch holds \"it\" & more, transposed\x01", layer="keras lstm / torch rnn1")
    good = compare_tensor("torch", "reference", "output", "prediction", ref, ref, ALLOW, "float64", 1)
    weights = compare_tensor("torch", "built weights", "parameter", "rnn/0/fw/kernel", ref[0], ref[0], ALLOW, "float64")
    cross = compare_tensor("tensorflow~torch", "torch", "output", "prediction", ref, ref, ALLOW, "float64", 1)
    return Report("lstm", "float64", 7, ("tensorflow", "torch"), {"numpy": np.__version__}, (weights, good, bad, cross),
                  notes=("a note with <markup> & \"quotes\"",),
                  timings={"torch: build+run": 0.5, "torch: verify": 0.25})


def test_xml_parses_with_one_testcase_per_check_and_the_failure_row() -> None:
    report = _report()
    text = junit(report)
    root = ET.fromstring(text.encode("utf-8"))
    cases = root.findall("./testsuite/testcase")
    assert len(cases) == len(report.checks), text
    assert (root.tag, root.get("tests"), root.get("failures"), root.get("errors")) == ("testsuites", "4", "1", "0"), \
        text
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert list(suites) == ["torch vs built weights", "torch vs reference", "tensorflow vs torch"], text
    torch = suites["torch vs reference"]
    assert (torch.get("tests"), torch.get("failures"), torch.get("time")) == ("2", "1", "0.750"), text
    # torch's seconds counted once, in its suite against the reference; a pair with no timing of its own gets none
    assert suites["torch vs built weights"].get("time") is None, text
    assert suites["tensorflow vs torch"].get("time") is None, text
    props = {p.get("name"): p.get("value") for p in torch.findall("./properties/property")}
    assert props["verdict"] == "mismatch" and props["note 1"] == "a note with <markup> & \"quotes\"", props
    failures = [(c.get("classname"), c.get("name"), c.find("failure")) for c in cases if c.find("failure") is not None]
    assert len(failures) == 1, text
    classname, name, failure = failures[0]
    assert (classname, name) == ("torch vs reference", "gradient rnn/0/fw<kernel>"), text
    bad = report.failures[0]
    message = failure.get("message")
    assert "gradient rnn/0/fw<kernel>" in message and "first bad step 3" in message and "gate f" in message, message
    row = failure.text
    for expected in ["rnn/0/fw<kernel>", "keras lstm / torch rnn1", f"{bad.max_abs:.2e}", f"{bad.norm_rel:.2e}",
                     f"{bad.used:.3g}", "1.00e-06", f"{bad.n_bad}/{bad.n_total}", "first bad step  3", "gate",
                     "torch holds \"it\" & more, transposed\\x01", "test allowance <&>"]:
        assert expected in row, (expected, row)


def test_same_report_same_text_and_a_passing_report_has_no_failure() -> None:
    report = _report()
    assert junit(report) == junit(report)
    passing = replace(report, checks=tuple(c for c in report.checks if c.ok), timings={})
    root = ET.fromstring(junit(passing))
    assert root.get("failures") == "0" and not root.findall(".//failure"), junit(passing)
    assert {p.get("value") for p in root.iter("property") if p.get("name") == "verdict"} == {"equivalent"}


def test_cli_writes_junit_and_markdown_whole_for_exit_0_and_1(tmp_path, capsys, monkeypatch) -> None:
    from adapters import torch_stack
    from verify.cli import main
    paths = [tmp_path / "report.xml", tmp_path / "summary.md"]
    argv = ["compare", "--model", "lstm", "--frameworks", "torch", "--junit", str(paths[0]), "--markdown",
            str(paths[1]), "--quiet"]
    rc = main(argv)
    out = capsys.readouterr()
    assert rc == 0, out.out + out.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.xml", "summary.md"]  # no temporary file left
    root = ET.fromstring(paths[0].read_bytes())
    assert root.get("failures") == "0" and int(root.get("tests")) == len(root.findall(".//testcase")) > 0, \
        paths[0].read_text()
    assert paths[1].read_text().startswith("## model lstm, dtype float32, seed 0: equivalent"), paths[1].read_text()

    real = torch_stack.run

    def drifting(*args, **kwargs):  # the torch adapter made to drift from step 5 on
        results = real(*args, **kwargs)
        results["output"]["prediction"] = results["output"]["prediction"] + 1e-2 * (
            np.arange(results["output"]["prediction"].shape[1]) >= 5)[None, :, None]
        return results
    monkeypatch.setattr(torch_stack, "run", drifting)
    rc = main(argv)
    out = capsys.readouterr()
    assert rc == 1, out.out + out.err
    failures = [c for c in ET.fromstring(paths[0].read_bytes()).iter("testcase") if c.find("failure") is not None]
    assert [c.get("name") for c in failures] == ["output prediction"], paths[0].read_text()
    assert "first bad step  5" in failures[0].find("failure").text, failures[0].find("failure").text
    text = paths[1].read_text()
    assert ": mismatch" in text.splitlines()[0] and "| torch vs reference | output | `prediction` |" in text, text


@pytest.mark.parametrize("argv", [
    ["compare", "--model", "lstm", "--frameworks", "torch"],
    ["port", "model.keras", "--to", "torch", "-o", "out.pt"],
])
@pytest.mark.parametrize("option, what", [("--junit", "JUnit"), ("--markdown", "Markdown")])
def test_a_bad_report_path_exits_2_before_any_work(argv, option, what, tmp_path, capsys) -> None:
    from verify.cli import main
    rc = main(argv + [option, str(tmp_path / "no" / "r"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith(f"error: cannot write {what} report") and len(err.splitlines()) == 1, err
    assert list(tmp_path.iterdir()) == [], list(tmp_path.iterdir())
