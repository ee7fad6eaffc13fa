"""``python -m verify snapshot``: what it records, in which format, deterministically; and ``check`` on an untouched
snapshot in the same environment reproduces it bit for bit (exit 0, every drift exactly 0)."""
import json
import zipfile

import numpy as np
import pytest

from verify import snapshot
from verify.cli import main


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err.strip()


def _take(capsys, directory, *extra: str) -> str:
    rc, out, err = _run(capsys, "snapshot", *extra, "-o", str(directory), "--quiet")
    assert rc == 0, out + err
    return out


def test_untouched_snapshot_checks_with_zero_drift(tmp_path, capsys) -> None:
    _take(capsys, tmp_path / "snap", "--model", "lstm", "--frameworks", "torch")
    rc, out, err = _run(capsys, "check", str(tmp_path / "snap"), "--json", str(tmp_path / "r.json"), "--quiet")
    assert rc == 0, out + err
    assert "verdict: unchanged" in out and "environment: unchanged" in out
    report = json.loads((tmp_path / "r.json").read_text())
    drift = [c for c in report["checks"] if c["quantity"] == "drift vs snapshot"]
    # the reference's own tensors and every tensor torch produced (outputs, states, loss, accuracy, gradients)
    assert {c["framework"] for c in drift} == {"reference", "torch"}
    assert {c["name"].split()[0] for c in drift if c["framework"] == "torch"} == \
        {"output", "state", "loss", "accuracy", "gradient"}
    assert all(c["max_abs"] == 0 and c["used"] == 0 for c in drift), [c for c in drift if c["max_abs"]]
    assert report["check"]["verdict"] == "unchanged" and report["check"]["moved"] == []
    assert report["check"]["environment_changes"] == []
    assert report["verdict"] == "equivalent"


def test_format_is_documented_versioned_and_plain(tmp_path, capsys) -> None:
    _take(capsys, tmp_path / "snap", "--model", "lstm", "--frameworks", "torch")
    doc = json.loads((tmp_path / "snap" / "snapshot.json").read_text())
    assert doc["format"] == snapshot.FORMAT and doc["format_version"] == 1
    assert (doc["model"], doc["dtype"], doc["seed"], doc["frameworks"]) == ("lstm", "float32", 0, ["torch"])
    env = doc["environment"]
    assert env["torch"]["version"].startswith("2.13") and env["torch"]["git_version"]
    assert env["numpy"]["blas"] and "simd" in env["cpu"] and len(env["cpu"]["flags_sha256"]) == 16
    assert env["threads"]["cpu_count"] and "OMP_NUM_THREADS" in env["threads"]
    assert "tensorflow" not in env  # not imported for a torch-only snapshot
    allowance = doc["policy"]["torch"]["output prediction"]
    assert allowance["atol"] > 0 and allowance["rtol"] > 0 and allowance["why"] and allowance["rule"]
    with zipfile.ZipFile(tmp_path / "snap" / "arrays.npz") as z:
        members = sorted(n[:-4] for n in z.namelist())
    assert members == sorted(e["key"] for e in doc["arrays"])
    roles = {e["role"] for e in doc["arrays"]}
    assert roles == {"input", "weights", "read back", "results", "reference"}
    with np.load(tmp_path / "snap" / "arrays.npz", allow_pickle=False) as npz:
        for e in doc["arrays"]:
            a = npz[e["key"]]
            assert a.dtype.kind in "biuf" and list(a.shape) == e["shape"]
    # small: kilobytes
    assert (tmp_path / "snap" / "arrays.npz").stat().st_size < 200_000


def test_the_same_command_twice_writes_the_same_files(tmp_path, capsys) -> None:
    for d in ("a", "b"):
        _take(capsys, tmp_path / d, "--model", "gru", "--frameworks", "torch", "--seed", "3")
    assert (tmp_path / "a" / "snapshot.json").read_bytes() == (tmp_path / "b" / "snapshot.json").read_bytes()
    with np.load(tmp_path / "a" / "arrays.npz") as a, np.load(tmp_path / "b" / "arrays.npz") as b:
        assert a.files == b.files
        for k in a.files:
            assert a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]), k
    # and the bytes: the zip's timestamps are fixed
    assert (tmp_path / "a" / "arrays.npz").read_bytes() == (tmp_path / "b" / "arrays.npz").read_bytes()


def test_retake_rewrites_the_same_snapshot(tmp_path, capsys) -> None:
    _take(capsys, tmp_path / "snap", "--model", "rnn", "--frameworks", "torch")
    before = (tmp_path / "snap" / "snapshot.json").read_bytes()
    snapshot.retake(str(tmp_path / "snap"))
    assert (tmp_path / "snap" / "snapshot.json").read_bytes() == before


def test_random_model_from_its_seed(tmp_path, capsys) -> None:
    from verify import random_model
    seed = next(s for s in range(50) if "torch" in random_model.entry(s).frameworks)
    _take(capsys, tmp_path / "snap", "--model", "random", "--seed", str(seed), "--frameworks", "torch")
    doc = json.loads((tmp_path / "snap" / "snapshot.json").read_text())
    assert doc["kind"] == "random" and doc["spec"]["class"] == "StackSpec"
    assert snapshot.read(str(tmp_path / "snap")).spec == random_model.draw_spec(seed)
    rc, out, _ = _run(capsys, "check", str(tmp_path / "snap"), "--quiet")
    assert rc == 0 and "verdict: unchanged" in out, out


@pytest.mark.parametrize("argv, message", [
    (["--model", "nope"], "unknown model 'nope'"),
    (["--model", "lstm", "--frameworks", "jax"], "framework(s) jax not available"),
    (["--model", "lstm", "--dtype", "float16"], "unknown dtype 'float16'"),
    (["--model", "lstm", "--keras", "m.keras"], "not both"),
])
def test_bad_usage_is_one_line(tmp_path, capsys, argv, message) -> None:
    rc, _, err = _run(capsys, "snapshot", *argv, "-o", str(tmp_path / "snap"), "--quiet")
    assert rc == 2 and err.startswith("error: ") and "\n" not in err and message in err, err
    assert not (tmp_path / "snap").exists()


def test_trained_model_records_trained_weights_and_held_out_results(tmp_path, capsys) -> None:
    """No retraining in check: it rebuilds each framework from the trained weights and reruns the held-out set."""
    from adapters import torch_seq2seq
    _take(capsys, tmp_path / "snap", "--model", "bidirectional_classifier", "--frameworks", "torch")
    doc = json.loads((tmp_path / "snap" / "snapshot.json").read_text())
    assert doc["kind"] == "trained" and doc["batch"]["class"] == "Seq2SeqBatch"

    def no_training(*args, **kwargs):
        raise AssertionError("check retrained")
    import _pytest.monkeypatch
    with _pytest.monkeypatch.MonkeyPatch.context() as mp:
        mp.setattr(torch_seq2seq, "train", no_training)
        rc, out, err = _run(capsys, "check", str(tmp_path / "snap"), "--quiet")
    assert rc == 0 and "verdict: unchanged" in out, out + err


def test_trained_layer_stack_is_trained_as_compare_trains_it(tmp_path, capsys) -> None:
    """A tutorial's layer stack (echo: Adagrad, state carried across batches) trains with its own optimiser, and
    check reruns it unchanged."""
    _take(capsys, tmp_path / "snap", "--model", "echo", "--frameworks", "torch")
    doc = json.loads((tmp_path / "snap" / "snapshot.json").read_text())
    assert doc["kind"] == "trained"
    assert any("adagrad steps" in n and "state carried" in n for n in doc["notes"]), doc["notes"]
    rc, out, err = _run(capsys, "check", str(tmp_path / "snap"), "--quiet")
    assert rc == 0 and "verdict: unchanged" in out, out + err


def test_users_files_are_rebuilt_from_their_weights(tmp_path, capsys) -> None:
    """A Keras file and its torch port: the snapshot holds the description and both files' canonical weights; check
    rebuilds both through the stack adapters."""
    import keras
    model = keras.Sequential([keras.Input((5, 2)), keras.layers.GRU(3, return_sequences=True, name="gru"),
                              keras.layers.Dense(2, name="head")])
    rng = np.random.default_rng(0)
    model.set_weights([rng.uniform(-0.5, 0.5, w.shape).astype("float32") for w in model.get_weights()])
    model.save(tmp_path / "m.keras")
    assert main(["port", str(tmp_path / "m.keras"), "--to", "torch", "-o", str(tmp_path / "m.pt"), "--quiet"]) == 0
    _take(capsys, tmp_path / "snap", "--keras", str(tmp_path / "m.keras"), "--torch", str(tmp_path / "m.pt"))
    doc = json.loads((tmp_path / "snap" / "snapshot.json").read_text())
    assert doc["kind"] == "files" and doc["frameworks"] == ["tensorflow", "torch"]
    assert doc["source"] == {"keras": "../m.keras", "torch": "../m.pt"}  # relative to the snapshot
    assert [l["kind"] for l in doc["spec"]["layers"]] == ["Recurrent", "Dense"]
    rc, out, err = _run(capsys, "check", str(tmp_path / "snap"), "--quiet")
    assert rc == 0 and "verdict: unchanged" in out, out + err


def test_a_keras_2_files_keras_3_side_is_what_keras_3_computes(tmp_path, capsys) -> None:
    """As compare: a Keras 2 .h5 whose LSTM gates with hard_sigmoid is rebuilt by Keras 3, which computes its own
    hard_sigmoid (relu6(x + 3) / 6) for the file's name, while the reference runs Keras 2's (0.2 x + 0.5): the
    snapshot records the mismatch compare reports (exit 1), and check rebuilds the Keras side the same way (no drift).
    With sigmoid gates the file is equivalent. A hand-edited renaming that names no activation is refused."""
    import os
    data = os.path.join(os.path.dirname(__file__), "data", "keras2")
    hard, sigmoid = os.path.join(data, "lstm_hard_sigmoid.h5"), os.path.join(data, "lstm_sigmoid.h5")
    assert _run(capsys, "compare", "--keras", hard, "--quiet")[0] == 1
    rc, out, err = _run(capsys, "snapshot", "--keras", hard, "-o", str(tmp_path / "hard"), "--quiet")
    assert rc == 1 and "tensorflow vs reference: output prediction" in out, out + err
    doc = json.loads((tmp_path / "hard" / "snapshot.json").read_text())
    assert doc["build_options"] == {"tensorflow": {"activations": {"hard_sigmoid_keras2": "hard_sigmoid"}}}
    assert doc["spec"]["layers"][0]["recurrent_activation"] == "hard_sigmoid_keras2"  # what the reference runs
    assert any("relu6(x + 3) / 6" in n for n in doc["notes"])
    rc, out, err = _run(capsys, "check", str(tmp_path / "hard"), "--json", str(tmp_path / "r.json"), "--quiet")
    report = json.loads((tmp_path / "r.json").read_text())
    failed = {(c["framework"], c["against"]) for c in report["checks"] if not c["ok"]}
    assert rc == 1 and failed == {("tensorflow", "reference")}, out + err
    assert report["check"]["moved"] == []  # rebuilt as the snapshot ran it: bit for bit
    assert _run(capsys, "snapshot", "--keras", sigmoid, "-o", str(tmp_path / "sigmoid"), "--quiet")[0] == 0
    assert json.loads((tmp_path / "sigmoid" / "snapshot.json").read_text())["build_options"] == {}
    doc["build_options"]["tensorflow"]["activations"] = {"hard_sigmoid_keras2": "softsign"}
    (tmp_path / "hard" / "snapshot.json").write_text(json.dumps(doc))
    rc, out, err = _run(capsys, "check", str(tmp_path / "hard"), "--quiet")
    assert rc == 2 and "build_options: tensorflow activations" in err and len(err.splitlines()) == 1, err
