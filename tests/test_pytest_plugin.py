"""The pytest plugin in a sample project (a new pytest process): a snapshot checked by the ``verify_snapshot`` fixture
and marker passes untouched, fails after tampering with the failing row in its output, and ``--verify-update``
rewrites it so that it passes again; the plugin imports nothing heavy at start-up."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from verify.cli import main

SAMPLE = '''
import pytest


def test_fixture(verify_snapshot):
    verify_snapshot("snapshots/rnn")


@pytest.mark.verify_snapshot("snapshots/rnn")
def test_marker():
    assert 1 + 1 == 2
'''


def _pytest(project, *extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS", "CI")}
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "verify.pytest_plugin", "-p", "no:cacheprovider",
                           "-q", "-rA", *extra, "test_sample.py"],
                          cwd=project, capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture
def project(tmp_path):
    (tmp_path / "test_sample.py").write_text(textwrap.dedent(SAMPLE))
    assert main(["snapshot", "--model", "rnn", "--frameworks", "torch", "-o", str(tmp_path / "snapshots" / "rnn"),
                 "--quiet"]) == 0
    return tmp_path


def _tamper(snapshot_dir) -> None:
    path = os.path.join(snapshot_dir, "arrays.npz")
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    key = "results/torch/output/prediction"
    arrays[key] = arrays[key].copy()
    arrays[key][1, 2, 0] += np.float32(1e-3)
    np.savez_compressed(path, **arrays)


def test_passes_fails_after_tampering_and_update_rewrites(project, capsys) -> None:
    first = _pytest(project)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "2 passed" in first.stdout

    _tamper(project / "snapshots" / "rnn")
    broken = _pytest(project)
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert "2 failed" in broken.stdout
    row = "torch vs snapshot: drift vs snapshot output prediction: max abs error 1.00e-03 at index (1, 2, 0)"
    assert broken.stdout.count(row) >= 2, broken.stdout  # in both tests' failures
    assert "verify_snapshot" in broken.stdout and "mismatch" in broken.stdout
    assert "Traceback" not in broken.stdout  # the check's own text, not a trace into the verifier

    updated = _pytest(project, "--verify-update")
    assert updated.returncode == 0, updated.stdout + updated.stderr
    again = _pytest(project)
    assert again.returncode == 0 and "2 passed" in again.stdout, again.stdout + again.stderr
    # the rewrite is the snapshot as it was before the tampering: the same files as a new one
    assert main(["snapshot", "--model", "rnn", "--frameworks", "torch", "-o", str(project / "fresh"), "--quiet"]) == 0
    with np.load(project / "fresh" / "arrays.npz") as a, np.load(project / "snapshots" / "rnn" / "arrays.npz") as b:
        assert all(np.array_equal(a[k], b[k]) for k in a.files)


def test_an_unreadable_snapshot_fails_the_test_in_one_line(project) -> None:
    (project / "snapshots" / "rnn" / "snapshot.json").write_text("not json")
    p = _pytest(project, "-k", "fixture")
    assert p.returncode == 1, p.stdout + p.stderr
    assert "verify_snapshot: " in p.stdout and "not a snapshot's JSON" in p.stdout


def test_nothing_heavy_at_start_up() -> None:
    code = ("import sys, verify.pytest_plugin; "
            "print(sorted(m for m in ('torch', 'tensorflow', 'keras') if m in sys.modules))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert p.stdout.strip() == "[]"


def test_registered_as_an_entry_point() -> None:
    from importlib.metadata import entry_points
    [ep] = [e for e in entry_points(group="pytest11") if e.name == "verify"]
    assert ep.value == "verify.pytest_plugin"
