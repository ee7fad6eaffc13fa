"""Bad files given to `compare`, `inspect` and `port`: one line naming the file, exit 2, no traceback, nothing run."""
import subprocess
import sys

import numpy as np
import pytest

from tests.bad_files import CASES, make_bad_files, pwned_marker
from verify.cli import main


def _keras_side(case: str) -> bool:
    return case.endswith(("_keras", "_h5")) or case == "zip_not_keras"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The bad files, and a good Keras model with its torch port to pair each bad file with."""
    from adapters.tf_import import import_tf
    d = tmp_path_factory.mktemp("files")
    _, keras = import_tf()
    rng = np.random.default_rng(0)
    model = keras.Sequential([keras.Input((5, 2)), keras.layers.LSTM(3, name="lstm"), keras.layers.Dense(2, name="out")])
    model.set_weights([rng.uniform(-0.5, 0.5, w.shape).astype("float32") for w in model.get_weights()])
    model.save(d / "good.keras")
    assert main(["port", str(d / "good.keras"), "--to", "torch", "-o", str(d / "good.pt"), "--quiet"]) == 0
    return d, make_bad_files(d / "bad")


@pytest.mark.parametrize("case", list(CASES))
def test_bad_file_exits_2_with_one_line_naming_it(case: str, files, capsys) -> None:
    d, bad = files
    path = str(bad[case])
    args = ["--keras", path, "--torch", str(d / "good.pt")] if _keras_side(case) else \
        ["--keras", str(d / "good.keras"), "--torch", path]
    capsys.readouterr()
    rc = main(["compare", *args, "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith(f"error: {path}"), (rc, err)
    assert not pwned_marker(bad[case].parent).exists()


@pytest.mark.parametrize("case", ["pickle_code_pt", "lambda_keras", "random_keras"])
def test_inspect_and_port_refuse_bad_files_too(case: str, files, capsys) -> None:
    d, bad = files
    path = str(bad[case])
    for argv in (["inspect", path], ["port", path, "--to", "torch", "-o", str(d / "out.pt")] if _keras_side(case)
                 else ["port", path, "--to", "keras", "--like", str(d / "good.keras"), "-o", str(d / "out.keras")]):
        capsys.readouterr()
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and bad[case].name in err[0], err
    assert not pwned_marker(bad[case].parent).exists() and not (d / "out.pt").exists()


def test_in_a_fresh_process_the_pickle_payload_does_not_run(files) -> None:
    d, bad = files
    out = subprocess.run([sys.executable, "-m", "verify", "compare", "--keras", str(d / "good.keras"), "--torch",
                          str(bad["pickle_code_pt"]), "--quiet"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 2 and "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1, \
        out.stderr
    assert "would run code" in out.stderr and "set to `False`" not in out.stderr, out.stderr
    assert not pwned_marker(bad["pickle_code_pt"].parent).exists()


def test_a_state_dict_with_a_missing_layer_or_a_wrong_shape_is_named(files, tmp_path, capsys) -> None:
    import torch
    d, _ = files
    sd = torch.load(d / "good.pt", weights_only=True)
    cases = {"missing": {k: v for k, v in sd.items() if not k.startswith("out.")},
             "extra": {**sd, "more.weight": torch.zeros(2, 2)},
             "shape": {**sd, "out.weight": torch.zeros(3, 3)}}
    expected = {"missing": "no torch module for layer(s) ['out']", "extra": "extra torch module more",
                "shape": "out.weight has shape (3, 3), but layer out needs (2, 3)"}
    for name, state in cases.items():
        path = tmp_path / f"{name}.pt"
        torch.save(state, path)
        capsys.readouterr()
        assert main(["compare", "--keras", str(d / "good.keras"), "--torch", str(path), "--quiet"]) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and expected[name] in err and path.name in err, err


def test_port_never_overwrites_an_input(files, capsys) -> None:
    d, _ = files
    before = (d / "good.keras").read_bytes()
    assert main(["port", str(d / "good.pt"), "--to", "keras", "--like", str(d / "good.keras"),
                 "-o", str(d / "good.keras"), "--quiet"]) == 2
    assert "never overwrites an input" in capsys.readouterr().err and (d / "good.keras").read_bytes() == before


def test_bad_inputs_and_targets_are_one_line(files, tmp_path, capsys) -> None:
    d, _ = files
    rng = np.random.default_rng(0)
    np.save(tmp_path / "x.npy", rng.uniform(-1, 1, (4, 5, 2)))
    np.save(tmp_path / "x_nan.npy", np.full((4, 5, 2), np.nan))
    np.save(tmp_path / "x_wide.npy", np.zeros((4, 5, 3)))
    np.save(tmp_path / "y_big.npy", np.array([0, 1, 5, 1]))
    np.savez(tmp_path / "xz.npz", a=np.zeros(2))
    cases = {("--inputs", "x_wide.npy"): "expected shape (batch, steps, 2), got (4, 5, 3)",
             ("--inputs", "x_nan.npy"): "hold NaN",
             ("--inputs", "xz.npz"): "expected one .npy array",
             ("--targets", "y_big.npy"): "--targets needs --inputs",
             ("--inputs", "x.npy", "--targets", "y_big.npy"): "class ids must lie in 0..1"}
    for args, expected in cases.items():
        argv = [a if a.startswith("--") else str(tmp_path / a) for a in args]
        capsys.readouterr()
        rc = main(["compare", "--keras", str(d / "good.keras"), "--torch", str(d / "good.pt"), *argv, "--quiet"])
        err = capsys.readouterr().err.strip()
        assert rc == 2 and "\n" not in err and expected in err, (args, err)
