"""``python -m verify check DIR``: a tampered record or a changed framework op is named (exit 1), a drift within the
policy is reported as such (exit 0), a changed environment is listed, and a snapshot it cannot read is refused in one
line (exit 2), never unpickled."""
import json
import os
import pickle
import zipfile

import numpy as np
import pytest

from verify.cli import main

PREDICTION = "results/torch/output/prediction"


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err.strip()


@pytest.fixture(scope="module")
def taken(tmp_path_factory) -> str:
    """One torch-only snapshot of the zoo's gru_reset_before (torch runs it as a loop of torch ops), copied per test."""
    d = tmp_path_factory.mktemp("taken") / "snap"
    assert main(["snapshot", "--model", "gru_reset_before", "--frameworks", "torch", "-o", str(d), "--quiet"]) == 0
    return str(d)


@pytest.fixture
def snap(taken, tmp_path) -> str:
    import shutil
    return shutil.copytree(taken, tmp_path / "snap")


def _arrays(path) -> dict[str, np.ndarray]:
    with np.load(os.path.join(path, "arrays.npz"), allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _rewrite(path, arrays: dict) -> None:
    np.savez_compressed(os.path.join(path, "arrays.npz"), **arrays)


def _edit_json(path, edit) -> None:
    p = os.path.join(path, "snapshot.json")
    doc = json.load(open(p))
    edit(doc)
    with open(p, "w") as fh:
        json.dump(doc, fh)


def test_one_number_changed_in_the_record_is_named(snap, capsys, tmp_path) -> None:
    arrays = _arrays(snap)
    arrays[PREDICTION] = arrays[PREDICTION].copy()
    arrays[PREDICTION][2, 4, 0] += np.float32(1e-3)
    _rewrite(snap, arrays)
    rc, out, err = _run(capsys, "check", str(snap), "--json", str(tmp_path / "r.json"), "--quiet")
    assert rc == 1, out + err
    assert "torch vs snapshot: drift vs snapshot output prediction: max abs error 1.00e-03 at index (2, 4, 0)" in out
    assert "verdict: mismatch (1 of" in out
    report = json.loads((tmp_path / "r.json").read_text())
    [bad] = [c for c in report["checks"] if not c["ok"]]
    assert (bad["framework"], bad["against"], bad["quantity"], bad["name"]) == \
        ("torch", "snapshot", "drift vs snapshot", "output prediction")
    assert report["check"]["verdict"] == "mismatch"
    [move] = report["check"]["moved"]
    # the recorded value was the one off: the new run is nearer the reference
    assert move["name"] == "prediction" and move["direction"] == "towards the reference" and move["share"] > 100


def test_a_changed_reference_record_is_a_reference_change(snap, capsys) -> None:
    arrays = _arrays(snap)
    key = "reference/torch/state/rnn/0/fw"
    arrays[key] = arrays[key] * (1 + 1e-10)
    _rewrite(snap, arrays)
    rc, out, _ = _run(capsys, "check", str(snap), "--quiet")
    assert rc == 1 and "verdict: reference changed" in out, out
    assert f"reference vs snapshot: drift vs snapshot state {key.split('/', 3)[3]}" in out


def test_a_framework_op_replaced_by_a_slightly_different_one_is_named(snap, capsys, monkeypatch) -> None:
    """torch's tanh made 1e-4 larger (relative): the new torch disagrees with the reference beyond the policy."""
    from adapters import torch_nn
    real = torch_nn._act

    def act(name: str):
        f = real(name)
        return (lambda z: f(z) * (1 + 1e-4)) if name == "tanh" else f
    monkeypatch.setattr(torch_nn, "_act", act)
    rc, out, err = _run(capsys, "check", str(snap), "--quiet")
    assert rc == 1, out + err
    assert "torch vs reference: output prediction" in out or "torch vs reference: output gru_reset_before" in out, out
    assert "moved (max |new - old|" in out and "away from the reference" in out


def test_a_drift_within_the_policy_passes_and_says_so(snap, capsys, monkeypatch) -> None:
    """The torch prediction moved by one float32 ulp: a move, within the policy, listed with its direction."""
    from adapters import torch_stack
    real = torch_stack.run

    def nudged(*args, **kwargs):
        results = real(*args, **kwargs)
        p = results["output"]["prediction"]
        results["output"]["prediction"] = np.nextafter(p, np.float32(np.inf)).astype(p.dtype)
        return results
    monkeypatch.setattr(torch_stack, "run", nudged)
    rc, out, err = _run(capsys, "check", str(snap), "--quiet")
    assert rc == 0, out + err
    assert "verdict: moved within the policy (1 of" in out
    assert "torch output prediction: max |new - old|" in out
    assert any(w in out for w in ("towards the reference", "away from the reference", "neither")), out


def test_changed_environment_facts_are_listed(snap, capsys) -> None:
    def older(doc):
        doc["environment"]["torch"]["version"] = "2.12.0+cpu"
        doc["environment"]["threads"]["cpu_count"] = 64
    _edit_json(snap, older)
    rc, out, _ = _run(capsys, "check", str(snap), "--quiet")
    assert rc == 0, out
    assert "environment: 2 of" in out and "torch.version: 2.12.0+cpu -> 2.13.0" in out
    assert "threads.cpu_count: 64 -> " in out


def test_junit_and_markdown(snap, capsys, tmp_path) -> None:
    pytest.importorskip("verify.junit")
    pytest.importorskip("verify.markdown")
    rc, out, err = _run(capsys, "check", str(snap), "--junit", str(tmp_path / "r.xml"), "--markdown",
                        str(tmp_path / "r.md"), "--quiet")
    assert rc == 0, out + err
    assert "drift vs snapshot" in (tmp_path / "r.xml").read_text() and (tmp_path / "r.md").read_text()


class _Payload:
    """A pickle that would create a file if it were ever loaded."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _corrupt(snap, how: str, tmp_path) -> None:
    npz = os.path.join(snap, "arrays.npz")
    if how == "truncated npz":
        data = open(npz, "rb").read()
        open(npz, "wb").write(data[: len(data) // 2])
    elif how == "json garbage":
        open(os.path.join(snap, "snapshot.json"), "w").write("{\"format\": [1, 2,,")
    elif how == "missing array":
        arrays = _arrays(snap)
        del arrays[PREDICTION]
        _rewrite(snap, arrays)
    elif how == "object array":
        arrays = _arrays(snap)
        arrays[PREDICTION] = np.array([_Payload(str(tmp_path / "ran"))], dtype=object)
        np.savez(npz, **arrays)  # savez pickles object arrays
    elif how == "pickled npz":
        with open(npz, "wb") as fh:
            pickle.dump({PREDICTION: _Payload(str(tmp_path / "ran"))}, fh)
    elif how == "nan":
        arrays = _arrays(snap)
        arrays[PREDICTION] = arrays[PREDICTION].copy()
        arrays[PREDICTION][0, 0, 0] = np.nan
        _rewrite(snap, arrays)
    elif how == "wrong shape":
        arrays = _arrays(snap)
        arrays[PREDICTION] = arrays[PREDICTION][:, :-1]
        _rewrite(snap, arrays)
    elif how == "weights of the wrong shape":
        def edit(doc):
            for e in doc["arrays"]:
                if e["role"] == "weights":
                    e["shape"] = [e["shape"][0] + 1] + e["shape"][1:]
                    arrays = _arrays(snap)
                    arrays[e["key"]] = np.zeros(e["shape"])
                    _rewrite(snap, arrays)
                    return
        _edit_json(snap, edit)
    elif how == "future format_version":
        _edit_json(snap, lambda doc: doc.update(format_version=2))
    elif how == "missing snapshot.json":
        os.unlink(os.path.join(snap, "snapshot.json"))
    elif how == "not a zip":
        open(npz, "wb").write(os.urandom(300))


EXPECTED = {
    "truncated npz": "not a readable .npz of plain arrays",
    "json garbage": "not a snapshot's JSON",
    "missing array": f"array '{PREDICTION}' is missing",
    "object array": "cannot be read as a plain numeric array",
    "pickled npz": "not a readable .npz of plain arrays",
    "nan": "holds NaN or infinite values; expected finite numbers",
    "wrong shape": f"array '{PREDICTION}' is f4 [8, 9, 1]; ",
    "weights of the wrong shape": "weights do not fit the spec",
    "future format_version": "written in snapshot format_version 2, newer than this verifier reads (1)",
    "missing snapshot.json": "snapshot.json: not found; expected snapshot.json and arrays.npz",
    "not a zip": "not a readable .npz of plain arrays",
}


@pytest.mark.parametrize("how", list(EXPECTED))
def test_a_snapshot_it_cannot_read_is_refused_in_one_line(snap, capsys, tmp_path, how) -> None:
    _corrupt(snap, how, tmp_path)
    rc, out, err = _run(capsys, "check", str(snap), "--json", str(tmp_path / "r.json"), "--quiet")
    assert rc == 2, out + err
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    assert EXPECTED[how] in err, err
    assert not (tmp_path / "ran").exists()  # nothing was unpickled
    assert not (tmp_path / "r.json").exists()  # exit 2 writes no report


def test_no_directory(capsys, tmp_path) -> None:
    rc, _, err = _run(capsys, "check", str(tmp_path / "nowhere"), "--quiet")
    assert rc == 2 and "no snapshot directory; expected a directory holding snapshot.json" in err and "\n" not in err


def test_a_corrupt_snapshot_from_the_command_line_prints_no_traceback(snap, tmp_path) -> None:
    """The real entry point in a new process: one line on stderr, exit 2."""
    import subprocess
    import sys
    _corrupt(snap, "truncated npz", tmp_path)
    p = subprocess.run([sys.executable, "-m", "verify", "check", str(snap)], capture_output=True, text=True,
                       cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert p.returncode == 2 and p.stdout == "" and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert zipfile.is_zipfile(os.path.join(snap, "arrays.npz")) is False
