"""Each exit code means one thing: 0 equivalent, 1 mismatch, 2 bad usage or input, 3 could not complete; the JSON
report is written whole or not at all, with verdict "error" when the run could not complete."""
import json

import pytest

from verify.cli import main


def _run(capsys, *argv: str) -> tuple[int, str]:
    capsys.readouterr()
    rc = main(list(argv))
    return rc, capsys.readouterr().err.strip()


def test_0_equivalent_with_the_json_written(tmp_path, capsys) -> None:
    rc, _ = _run(capsys, "compare", "--model", "rnn", "--frameworks", "torch", "--json", str(tmp_path / "r.json"),
                 "--quiet")
    assert rc == 0 and json.loads((tmp_path / "r.json").read_text())["verdict"] == "equivalent"
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temporary file left behind


def test_1_mismatch(tmp_path, capsys, monkeypatch) -> None:
    """The torch adapter made to hand back a wrong output: a mismatch, not an error."""
    from adapters import torch_stack
    real = torch_stack.run

    def wrong(*args, **kwargs):
        results = real(*args, **kwargs)
        results["output"]["prediction"] = results["output"]["prediction"] + 1e-2
        return results
    monkeypatch.setattr(torch_stack, "run", wrong)
    rc, _ = _run(capsys, "compare", "--model", "rnn", "--frameworks", "torch", "--json", str(tmp_path / "r.json"),
                 "--quiet")
    assert rc == 1 and json.loads((tmp_path / "r.json").read_text())["verdict"] == "mismatch"


def test_2_bad_input_writes_no_json(tmp_path, capsys) -> None:
    rc, err = _run(capsys, "compare", "--keras", str(tmp_path / "none.keras"), "--torch", str(tmp_path / "none.pt"),
                   "--json", str(tmp_path / "r.json"), "--quiet")
    assert rc == 2 and err.startswith("error: ") and "\n" not in err and not (tmp_path / "r.json").exists()


@pytest.mark.parametrize("exception", [RuntimeError("kernel exploded"), ValueError("adapter bug")])
def test_3_an_adapter_that_raises_could_not_complete(tmp_path, capsys, monkeypatch, exception) -> None:
    """A ValueError raised inside a run is the tool's failure too, not the user's input."""
    from adapters import torch_stack

    def broken(*args, **kwargs):
        raise exception
    monkeypatch.setattr(torch_stack, "run", broken)
    monkeypatch.chdir(tmp_path)
    rc, err = _run(capsys, "compare", "--model", "rnn", "--frameworks", "torch", "--json", "r.json", "--quiet")
    assert rc == 3 and "\n" not in err, err
    assert err.startswith("error: could not complete: torch: building and running raised "
                          f"{type(exception).__name__}: {exception}"), err
    trace = err.rsplit("(traceback: ", 1)[1].rstrip(")")
    assert "Traceback" in open(trace).read()
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["verdict"] == "error" and report["error"]["framework"] == "torch" and report["checks"] == []


def test_3_with_debug_prints_the_traceback(capsys, monkeypatch) -> None:
    from adapters import torch_stack
    monkeypatch.setattr(torch_stack, "run", lambda *a, **k: 1 / 0)
    rc, err = _run(capsys, "compare", "--model", "rnn", "--frameworks", "torch", "--quiet", "--debug")
    assert rc == 3 and "Traceback (most recent call last)" in err and "ZeroDivisionError" in err
