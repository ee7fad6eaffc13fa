"""Keras 2 .h5 files (tests/data/keras2, made by tf.keras 2.15): read without Keras, described, reproduced by the reference."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from adapters import keras2_h5, readers
from adapters.errors import BadInput
from reference import stack
from reference.layers import Dense, Dropout, Embedding, Masking, Recurrent
from reference.spec import Batch

DATA = Path(__file__).parent / "data" / "keras2"
ROOT = Path(__file__).parent.parent
MODELS = ["lstm_sigmoid", "lstm_hard_sigmoid", "gru_stack", "bidirectional_lstm", "simple_rnn_masked",
          "embedding_gru_functional"]
HARD = {"lstm_hard_sigmoid": ("lstm",), "embedding_gru_functional": ("gru",)}
# (kind, cell or None, options that must hold): what each file's maker (make_keras2_h5.py) put in it
EXPECTED = {
    "lstm_sigmoid": [(Recurrent, {"cell": "lstm", "hidden_size": 4, "recurrent_activation": "sigmoid",
                                  "return_sequences": True, "zero_output_for_mask": False}), (Dense, {"units": 2})],
    "lstm_hard_sigmoid": [(Recurrent, {"cell": "lstm", "recurrent_activation": "hard_sigmoid_keras2"}),
                          (Dense, {"activation": "linear"})],
    "gru_stack": [(Recurrent, {"cell": "gru", "reset_after": False, "return_sequences": True}),
                  (Recurrent, {"cell": "gru", "reset_after": True, "hidden_size": 3, "return_sequences": False}),
                  (Dense, {"activation": "softmax", "units": 3})],
    "bidirectional_lstm": [(Recurrent, {"cell": "lstm", "bidirectional": True, "merge_mode": "concat",
                                        "hidden_size": 3, "zero_output_for_mask": True}), (Dense, {"units": 2})],
    "simple_rnn_masked": [(Masking, {"mask_value": 0.0}), (Recurrent, {"cell": "simple_rnn", "activation": "tanh"}),
                          (Dropout, {"rate": 0.25}), (Dense, {"activation": "tanh", "name": "td"})],
    "embedding_gru_functional": [(Embedding, {"input_dim": 10, "output_dim": 3, "mask_zero": True}),
                                 (Recurrent, {"cell": "gru", "go_backwards": True, "return_sequences": False,
                                              "recurrent_activation": "hard_sigmoid_keras2"}),
                                 (Dense, {"activation": "softmax"})],
}


def _batch(spec, name: str) -> Batch:
    x = np.load(DATA / f"{name}_x.npy")
    x = x.astype(np.int64) if spec.takes_ids else x.astype(np.float64)
    from verify import user
    return Batch(x, user.draw_targets(spec, np.random.default_rng(0), x.shape[0], x.shape[1]))


def _copy(tmp_path: Path, name: str, edit=None) -> Path:
    """A copy of a data file, its model_config passed through ``edit`` (a function of the config dict)."""
    out = tmp_path / f"{name}.h5"
    shutil.copy(DATA / f"{name}.h5", out)
    if edit is not None:
        with h5py.File(out, "r+") as f:
            config = json.loads(f.attrs["model_config"])
            edit(config)
            f.attrs["model_config"] = json.dumps(config).encode()
    return out


def _layer(config: dict, name: str) -> dict:
    return next(l for l in config["config"]["layers"] if l["config"].get("name") == name)["config"]


# ------------------------------------------------------------------------------------------------ reading

def test_the_data_folder_is_small_and_complete():
    assert sum(p.stat().st_size for p in DATA.iterdir()) < 200_000
    for name in MODELS:
        assert (DATA / f"{name}.h5").exists() and (DATA / f"{name}_x.npy").exists()
        assert np.load(DATA / f"{name}_y_keras215.npy").dtype == np.float32


@pytest.mark.parametrize("name", MODELS)
def test_each_file_is_described_as_its_maker_built_it(name):
    model = keras2_h5.read(str(DATA / f"{name}.h5"))
    assert model.keras_version == "2.15.0" and model.backend == "tensorflow"
    assert len(model.spec.layers) == len(EXPECTED[name])
    for layer, (kind, options) in zip(model.spec.layers, EXPECTED[name]):
        assert type(layer) is kind
        assert {k: getattr(layer, k) for k in options} == options
    assert model.hard_sigmoid_layers == HARD.get(name, ())
    assert model.steps == (None if name == "gru_stack" else 6)
    stack.check_params(model.spec, model.params)
    assert list(model.params) == list(stack.param_shapes(model.spec))


@pytest.mark.parametrize("name", MODELS)
def test_weights_are_the_stored_arrays_in_canonical_layout(name):
    """Every canonical tensor is the dataset its tensor_name names, row-split for a reset_after GRU's (2, 3H) bias."""
    model = keras2_h5.read(str(DATA / f"{name}.h5"))
    with h5py.File(DATA / f"{name}.h5", "r") as f:
        for canonical, value in model.params.items():
            source = model.tensor_name[canonical].removeprefix("Keras 2 ")
            row = None
            if source.endswith(("[0]", "[1]")):
                source, row = source[:-3], int(source[-2])
            layer = source.split("/")[0]
            stored = np.asarray(f["model_weights"][layer][source][()], dtype=np.float64)
            np.testing.assert_array_equal(value, stored if row is None else stored[row])
    assert all(np.any(v != 0) for v in model.params.values())  # seeded, non-trivial weights


def test_the_gru_bias_rows_are_input_then_recurrent():
    model = keras2_h5.read(str(DATA / "gru_stack.h5"))
    with h5py.File(DATA / "gru_stack.h5", "r") as f:
        bias = f["model_weights/gru_after/gru_after/gru_cell/bias:0"][()]
    assert bias.shape == (2, 9)
    np.testing.assert_array_equal(model.params["gru_after/fw/bias"], bias[0])
    np.testing.assert_array_equal(model.params["gru_after/fw/recurrent_bias"], bias[1])
    assert "gru_before/fw/recurrent_bias" not in model.params  # reset_after=False: one bias (3H)


def test_reading_imports_no_keras_and_no_tensorflow():
    code = ("import sys; from adapters import keras2_h5; m = keras2_h5.read(sys.argv[1]); "
            "bad = [k for k in ('keras', 'tensorflow', 'torch') if k in sys.modules]; "
            "print(m.spec.layers[0].cell); sys.exit(1 if bad else 0)")
    out = subprocess.run([sys.executable, "-c", code, str(DATA / "lstm_sigmoid.h5")], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "lstm"


def test_keras2_files_are_recognised_by_their_attributes(tmp_path):
    screened = readers.screen_keras_file(str(DATA / "lstm_sigmoid.h5"))
    assert screened["keras2"] and screened["keras_version"] == "2.15.0"
    relabelled = _copy(tmp_path, "lstm_sigmoid")
    with h5py.File(relabelled, "r+") as f:
        f.attrs["keras_version"] = b"3.15.1"
    assert not readers.screen_keras_file(str(relabelled))["keras2"]
    with h5py.File(relabelled, "r+") as f:  # no version: Keras 2's time_major key gives it away
        del f.attrs["keras_version"]
    assert readers.screen_keras_file(str(relabelled))["keras2"]
    with h5py.File(relabelled, "r+") as f:
        f.attrs["keras_version"] = b"1.2.2"
    with pytest.raises(readers.BadFile, match="saved by Keras 1.2.2; expected a model saved by Keras 2 or 3"):
        readers.screen_keras_file(str(relabelled))


def test_keras3_loader_refuses_a_keras2_file_in_one_line():
    with pytest.raises(readers.BadFile) as e:
        readers.load_keras_model(str(DATA / "lstm_sigmoid.h5"))
    assert "saved by Keras 2" in str(e.value) and "\n" not in str(e.value)


def test_a_gru_config_without_reset_after_takes_it_from_the_bias_shape(tmp_path):
    def drop(config):  # Keras <= 2.2 wrote no reset_after
        for name in ("gru_before", "gru_after"):
            del _layer(config, name)["reset_after"]
    model = keras2_h5.read(str(_copy(tmp_path, "gru_stack", drop)))
    assert [l.reset_after for l in model.spec.recurrent_layers] == [False, True]


# ------------------------------------------------------------------------------- refusals, one line each

def _set(layer: str, **values):
    def edit(config):
        _layer(config, layer).update(values)
    return edit


@pytest.mark.parametrize("name, edit, expected", [
    ("lstm_sigmoid", _set("lstm", time_major=True), "layer LSTM (lstm): option time_major=True"),
    ("lstm_sigmoid", _set("lstm", return_state=True), "layer LSTM (lstm): option return_state=True"),
    ("lstm_sigmoid", _set("lstm", stateful=True), "layer LSTM (lstm): option stateful=True"),
    ("lstm_sigmoid", _set("lstm", recurrent_activation="softsign"),
     "layer LSTM (lstm): option recurrent_activation='softsign' is not supported"),
    ("lstm_sigmoid", _set("head", activation="hard_sigmoid"),
     "layer Dense (head): option activation='hard_sigmoid' is not supported"),
    ("lstm_sigmoid", _set("lstm", peepholes=True), "layer LSTM (lstm): option peepholes=True is unknown"),
    ("lstm_sigmoid", _set("lstm", dtype="mixed_float16"), "layer LSTM (lstm): option dtype='mixed_float16'"),
    ("lstm_sigmoid", _set("lstm", unroll=True, go_backwards=True), "option unroll=True with go_backwards=True"),
    ("bidirectional_lstm", _set("bidirectional", merge_mode=None),
     "layer Bidirectional (bidirectional): option merge_mode=None"),
])
def test_unsupported_options_are_refused_naming_layer_and_option(tmp_path, name, edit, expected):
    with pytest.raises(readers.BadFile) as e:
        keras2_h5.read(str(_copy(tmp_path, name, edit)))
    message = str(e.value)
    assert expected in message and "\n" not in message and message.startswith(str(tmp_path))
    assert isinstance(e.value, BadInput)  # the command line's exit-2 path


def test_options_that_do_not_change_inference_are_accepted(tmp_path):
    model = keras2_h5.read(str(_copy(tmp_path, "lstm_sigmoid", _set("lstm", implementation=1, unroll=True,
                                                                      dropout=0.5, recurrent_dropout=0.3))))
    assert model.spec == keras2_h5.read(str(DATA / "lstm_sigmoid.h5")).spec


def test_unsupported_layer_and_corrupt_files_are_one_line_bad_files(tmp_path):
    with pytest.raises(readers.BadFile, match=r"unsupported layer Conv1D \(conv\)"):
        keras2_h5.read(str(DATA / "unsupported_conv1d.h5"))
    cut = tmp_path / "cut.h5"
    cut.write_bytes((DATA / "lstm_sigmoid.h5").read_bytes()[:3000])
    with pytest.raises(readers.BadFile, match="damaged or truncated HDF5"):
        keras2_h5.read(str(cut))
    missing = _copy(tmp_path, "lstm_sigmoid")
    with h5py.File(missing, "r+") as f:
        del f["model_weights/lstm/lstm/lstm_cell/recurrent_kernel:0"]
    with pytest.raises(readers.BadFile, match="weight lstm/lstm_cell/recurrent_kernel:0 is named in weight_names but "
                                              "not stored"):
        keras2_h5.read(str(missing))
    nan = _copy(tmp_path, "lstm_sigmoid")
    with h5py.File(nan, "r+") as f:
        f["model_weights/head/head/bias:0"][0] = np.nan
    with pytest.raises(readers.BadFile, match="NaN"):
        keras2_h5.read(str(nan))


@pytest.mark.parametrize("file", ["unsupported_conv1d.h5", "cut"])
def test_cli_exits_2_with_one_line(tmp_path, file):
    path = DATA / file
    if file == "cut":
        path = tmp_path / "cut.h5"
        path.write_bytes((DATA / "lstm_sigmoid.h5").read_bytes()[:3000])
    out = subprocess.run([sys.executable, "-m", "verify", "compare", "--keras", str(path), "--quiet"], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0]


# -------------------------------------------------------------------------------- what Keras 2 computed

def _share(name: str, spec, params) -> float:
    """Largest share of the float32 allowance that Keras 2.15's saved outputs use against the reference on ``spec``."""
    from verify import engine
    y = np.load(DATA / f"{name}_y_keras215.npy")
    ref, allow = engine.reference_and_allowances(spec, params, _batch(spec, name), "float32")
    p, a = ref["output"]["prediction"], allow[("output", "prediction")]
    return float(np.max(np.abs(y - p) / (a.atol + a.rtol * np.abs(p))))


@pytest.mark.parametrize("name", MODELS)
def test_the_reference_reproduces_what_keras_2_15_computed(name):
    model = keras2_h5.read(str(DATA / f"{name}.h5"))
    assert _share(name, model.spec, model.params) <= 1.0  # measured: at most 0.011 of the float32 allowance


@pytest.mark.parametrize("name", sorted(HARD))
def test_keras3s_hard_sigmoid_does_not_compute_what_keras_2_did(name):
    """The trap the note reports: the same name, another function; the saved outputs tell the two apart."""
    model = keras2_h5.read(str(DATA / f"{name}.h5"))
    assert _share(name, keras2_h5.as_keras3(model.spec), model.params) > 100.0
    y = np.load(DATA / f"{name}_y_keras215.npy")
    k3 = stack.evaluate(keras2_h5.as_keras3(model.spec), model.params, _batch(model.spec, name))["output"]["prediction"]
    assert np.max(np.abs(k3 - y)) > 1e-3  # measured: 2.8e-2 (LSTM), 3.8e-3 (GRU, after a softmax)


def test_hard_sigmoid_definitions():
    from reference.activations import activation
    z = np.array([-3.0, -2.5, -1.0, 0.0, 1.0, 2.5, 3.0])
    np.testing.assert_allclose(activation("hard_sigmoid_keras2")[0](z), np.clip(0.2 * z + 0.5, 0, 1))
    np.testing.assert_allclose(activation("hard_sigmoid")[0](z), np.clip(z + 3, 0, 6) / 6)
    assert keras2_h5.RECURRENT_ACTIVATIONS["hard_sigmoid"] == "hard_sigmoid_keras2"
    model = keras2_h5.read(str(DATA / "lstm_hard_sigmoid.h5"))
    assert keras2_h5.hard_sigmoid_note(model).startswith(
        "the file was saved by Keras 2.15.0: hard_sigmoid = clip(0.2 x + 0.5, 0, 1); Keras 3 computes "
        "relu6(x + 3) / 6 for the same name")
    assert keras2_h5.hard_sigmoid_note(keras2_h5.read(str(DATA / "lstm_sigmoid.h5"))) is None


# ------------------------------------------------------------------------------------------- end to end

def test_compare_rebuilds_keras3_and_reports_the_hard_sigmoid_difference():
    from verify import api
    report = api.compare_files(keras=str(DATA / "lstm_hard_sigmoid.h5"))
    assert report.verdict == "mismatch"
    assert any(n.startswith("the file was saved by Keras 2.15.0: hard_sigmoid = clip(0.2 x + 0.5, 0, 1)")
               for n in report.notes)
    outputs = [c for c in report.checks if c.quantity == "output" and c.against == "reference"]
    assert outputs and all(c.n_bad for c in outputs) and max(c.max_abs for c in outputs) > 1e-3


def test_cli_compare_keras2_file_with_its_torch_port_is_equivalent(tmp_path):
    import torch

    from adapters import torch_stack
    model = keras2_h5.read(str(DATA / "lstm_sigmoid.h5"))
    port = tmp_path / "port.pt"
    state = torch_stack.state_dict(torch_stack.build(model.spec, model.params, "float32", split_bias=False))
    torch.save({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}, port)
    report = tmp_path / "report.json"
    out = subprocess.run([sys.executable, "-m", "verify", "compare", "--keras", str(DATA / "lstm_sigmoid.h5"),
                          "--torch", str(port), "--quiet", "--json", str(report)], cwd=ROOT, capture_output=True,
                         text=True, timeout=600, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    data = json.loads(report.read_text())
    assert data["verdict"] == "equivalent"
    assert set(data["frameworks"]) == {"tensorflow", "torch"}
    assert any("saved by Keras 2.15.0, which Keras 3 cannot load" in n for n in data["notes"])
    assert {c["framework"] for c in data["checks"]} >= {"tensorflow", "torch", "tensorflow~torch"}
