"""adapters.readers: each bad file of tests/bad_files.py is one BadFile line naming it; good files round-trip."""
import os
import pickle
import struct
import subprocess
import sys
from collections import OrderedDict

import numpy as np
import pytest

from adapters import readers
from adapters.readers import BadFile
from tests import bad_files

# What each case's message must say (beyond naming the file), so that a wrong reason fails the test.
EXPECT = {
    "missing_pt": "no such file", "missing_keras": "no such file",
    "directory_pt": "is a directory", "directory_keras": "is a directory",
    "empty_pt": "empty file", "empty_keras": "empty file", "empty_h5": "empty file", "empty_safetensors": "empty file",
    "truncated_pt": "truncated zip archive", "truncated_keras": "truncated zip archive",
    "truncated_h5": "truncated HDF5 file",
    "random_pt": "neither a zip archive", "random_keras": "not a zip archive", "random_h5": "not an HDF5 file",
    "random_safetensors": "not a safetensors file",
    "unsupported_suffix": "unsupported suffix '.ckpt'",
    "zip_not_keras": "not a Keras archive: no config.json",
    "pickle_code_pt": "pickle that would run code (torch.load weights_only=True refused it: it calls io.open)",
    "pickle_code_bin": "pickle that would run code (torch.load weights_only=True refused it: it calls io.open)",
    "pickle_code_pth": "pickle that would run code (torch.load weights_only=True refused it: it calls io.open)",
    "not_mapping_pt": "holds a Tensor", "non_tensor_value_pt": "key 'step' holds a value of type int",
    "non_str_key_pt": "key 0 is of type int",
    "nan_pt": "tensor 'weight' holds 1 NaN values (of 3)", "nan_safetensors": "tensor 'weight' holds 2 NaN values",
    "truncated_safetensors": "truncated safetensors file", "lying_offsets_safetensors": "data_offsets [0, 8] span 8",
    "overlapping_safetensors": "without gaps or overlaps",
    "lambda_keras": "Lambda (lambda) holds Python code", "lambda_h5": "Lambda (lambda) holds Python code",
    "lambda_nested_keras": "Lambda (lambda_1) holds Python code",
    "custom_layer_keras": "unsupported layer bad_files>Doubler (doubler)",
    "custom_layer_h5": "unsupported layer bad_files>Doubler (doubler)",
    "unsupported_layer_keras": "unsupported layer Conv1D (conv1d); supported: InputLayer",
    "nested_unsupported_keras": "unsupported layer RNN (forward_rnn)",
    "foreign_module_keras": "system from module os",
    "inf_keras": "lstm/lstm_cell/kernel holds 1 infinite values (of 16)",
    "inf_h5": "lstm/lstm_cell/kernel holds 1 infinite values (of 16)",
    "weights_only_h5": "holds weights only (save_weights); expected a whole model saved with model.save",
    "masked_functional_h5": "a Functional model with a mask (operation NotEqual, not_equal",
    "bad_weights_keras": "Keras could not load it: ",
}


@pytest.fixture(scope="session")
def bad(tmp_path_factory):
    return bad_files.make_bad_files(tmp_path_factory.mktemp("bad"))


LOAD_ONLY = ("inf_keras", "inf_h5", "bad_weights_keras")  # the architecture is fine; only loading sees the weights


def _readers(case: str, suffix: str) -> list:
    if case in LOAD_ONLY:
        return [readers.load_keras_model]
    if suffix in readers.TORCH_SUFFIXES:
        return [readers.read_torch_weights]
    if suffix in readers.KERAS_SUFFIXES:
        return [readers.screen_keras_file, readers.load_keras_model]
    return [readers.read_torch_weights, readers.screen_keras_file]


def test_every_case_has_an_expected_message():
    assert set(EXPECT) == set(bad_files.CASES)


def test_make_bad_files_makes_every_case(bad):
    assert list(bad) == list(bad_files.CASES)
    assert [c for c, p in bad.items() if not p.exists()] == ["missing_pt", "missing_keras"]


@pytest.mark.parametrize("case", list(bad_files.CASES))
def test_bad_file_is_one_line_naming_it(bad, case):
    path = bad[case]
    for read in _readers(case, path.suffix):
        with pytest.raises(BadFile) as info:
            read(str(path))
        message = str(info.value)
        assert "\n" not in message and message.startswith(f"{path}: ") and path.name in message, message
        assert EXPECT[case] in message, message
        assert isinstance(info.value, ValueError) and info.value.path == str(path)
    assert not bad_files.pwned_marker(path.parent).exists()


def test_keras_itself_cannot_load_a_masked_functional_h5(bad):
    """Why the screen refuses it: Keras 3.15's legacy loader does not know the mask operations it wrote."""
    from adapters.tf_import import import_tf
    _, keras = import_tf()
    with pytest.raises(ValueError, match="Unknown layer: 'NotEqual'"):
        keras.saving.load_model(str(bad["masked_functional_h5"]), compile=False, safe_mode=True)


@pytest.mark.parametrize("case", LOAD_ONLY)
def test_files_with_bad_weights_pass_the_screen(bad, case):
    assert readers.screen_keras_file(str(bad[case]))["format"] == bad[case].suffix[1:]


@pytest.mark.parametrize("how", ["torch", "protocol2", "protocol5"])
def test_code_pickles_would_run_code_and_are_never_unpickled(tmp_path, how):
    import torch
    live, refused = tmp_path / f"live_{how}.pt", tmp_path / f"refused_{how}.pt"
    bad_files.write_code_pickle(live, tmp_path / "ran", how)
    with open(live, "rb") as f:  # proof that the payload is real: an unsafe load runs it
        torch.load(f, weights_only=False) if how == "torch" else pickle.load(f)
    assert (tmp_path / "ran").exists()
    bad_files.write_code_pickle(refused, tmp_path / "not_ran", how)
    with pytest.raises(BadFile, match="pickle that would run code"):
        readers.read_torch_weights(str(refused))
    assert not (tmp_path / "not_ran").exists()


def test_bad_file_pickles():
    e = pickle.loads(pickle.dumps(BadFile("m.pt", "no such file")))
    assert isinstance(e, BadFile) and str(e) == "m.pt: no such file" and e.reason == "no such file"


def test_reasons_are_one_line():
    assert str(BadFile("m.pt", "a\nb\r\n\x1b[1mc\x1b[0m")) == "m.pt: a b c"


# ---- good torch files ---------------------------------------------------------------------------------


def _state_dict():
    import torch
    torch.manual_seed(0)
    lstm, head = torch.nn.LSTM(3, 4, batch_first=True), torch.nn.Linear(4, 2).double()
    sd = OrderedDict((f"lstm.{k}", v) for k, v in lstm.state_dict().items())
    sd.update((f"head.{k}", v) for k, v in head.state_dict().items())
    sd["steps"] = torch.tensor(7, dtype=torch.int64)
    sd["ids"] = torch.arange(5, dtype=torch.int32)
    return sd


def _assert_same(got: dict, want: dict) -> None:
    assert list(got) == list(want)
    for name, value in want.items():
        value = value.numpy()
        assert got[name].dtype == value.dtype and got[name].shape == value.shape, name
        assert np.array_equal(got[name], value), name


@pytest.mark.parametrize("suffix,zip_format", [(".pt", True), (".pth", False), (".bin", True)])
def test_torch_state_dict_round_trips(tmp_path, suffix, zip_format):
    import torch
    sd, path = _state_dict(), tmp_path / f"m{suffix}"
    torch.save(sd, path, _use_new_zipfile_serialization=zip_format)
    _assert_same(readers.read_torch_weights(str(path)), sd)


@pytest.mark.parametrize("key", readers.CHECKPOINT_KEYS)
def test_checkpoint_wrapping_a_state_dict_is_unwrapped(tmp_path, key):
    import torch
    sd = _state_dict()
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=0.1, momentum=0.9)
    torch.save({"epoch": 3, key: sd, "optimizer_state_dict": optimizer.state_dict()}, tmp_path / "c.pt")
    _assert_same(readers.read_torch_weights(str(tmp_path / "c.pt")), sd)


def test_checkpoint_with_two_state_dicts_is_refused(tmp_path):
    import torch
    torch.save({"state_dict": _state_dict(), "model_state_dict": _state_dict()}, tmp_path / "c.pt")
    with pytest.raises(BadFile, match="both state_dict and model_state_dict"):
        readers.read_torch_weights(str(tmp_path / "c.pt"))


def test_empty_state_dict_is_refused(tmp_path):
    import torch
    torch.save({}, tmp_path / "e.pt")
    with pytest.raises(BadFile, match="holds no tensors"):
        readers.read_torch_weights(str(tmp_path / "e.pt"))


def test_half_precision_tensors_become_float32(tmp_path):
    import torch
    values = [1.5, -0.25, 3.0]  # exact in bf16 and f16
    torch.save({"b": torch.tensor(values, dtype=torch.bfloat16), "h": torch.tensor(values, dtype=torch.float16)},
               tmp_path / "h.pt")
    got = readers.read_torch_weights(str(tmp_path / "h.pt"))
    for name in "bh":
        assert got[name].dtype == np.float32 and got[name].tolist() == values


# ---- safetensors ---------------------------------------------------------------------------------------


def test_safetensors_round_trip_is_bit_identical(tmp_path):
    tiny32, tiny64 = np.finfo(np.float32).smallest_subnormal, np.finfo(np.float64).smallest_subnormal
    tensors = {
        "w32": np.array([[1 / 3, -0.0, tiny32], [np.finfo(np.float32).max, -7.5, 1e-30]], np.float32),
        "w64": np.array([1 / 3, -0.0, tiny64, np.finfo(np.float64).max, np.pi], np.float64),
        "scalar": np.array(2.5, np.float64),
        "empty": np.zeros((0, 3), np.float32),
        "i64": np.array([np.iinfo(np.int64).min, -1, np.iinfo(np.int64).max], np.int64),
        "i32": np.arange(6, dtype=np.int32).reshape(3, 2),
        "big_endian": np.array([1.25, -2.0], ">f4"),
    }
    path = tmp_path / "t.safetensors"
    readers.write_safetensors(str(path), tensors)
    got = readers.read_torch_weights(str(path))
    assert list(got) == list(tensors)
    for name, value in tensors.items():
        want = value.astype(value.dtype.newbyteorder("="))
        assert got[name].dtype == want.dtype and got[name].shape == want.shape, name
        assert got[name].tobytes() == want.tobytes(), name  # bits, so -0.0 and subnormals count


def test_safetensors_bytes_follow_the_format(tmp_path):
    readers.write_safetensors(str(tmp_path / "a.safetensors"), {"a": np.array([1.0, -2.0], np.float32)})
    data = (tmp_path / "a.safetensors").read_bytes()
    header = b'{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}'
    header += b" " * (-len(header) % 8)
    assert data == struct.pack("<Q", len(header)) + header + struct.pack("<2f", 1.0, -2.0)


def test_safetensors_reads_dtypes_written_by_others(tmp_path):
    buffer = (struct.pack("<2e", 1.5, -0.25) + struct.pack("<2H", 0x3FC0, 0xBF80)  # f16; bf16 1.5, -1.0
              + bytes([1, 0]) + struct.pack("<2b", -3, 4))
    header = {"__metadata__": {"format": "pt"},
              "h": {"dtype": "F16", "shape": [2], "data_offsets": [0, 4]},
              "b": {"dtype": "BF16", "shape": [2], "data_offsets": [4, 8]},
              "mask": {"dtype": "BOOL", "shape": [2], "data_offsets": [8, 10]},
              "i8": {"dtype": "I8", "shape": [1, 2], "data_offsets": [10, 12]}}
    bad_files.write_raw_safetensors(tmp_path / "o.safetensors", header, buffer)
    got = readers.read_torch_weights(str(tmp_path / "o.safetensors"))
    assert list(got) == ["h", "b", "mask", "i8"]
    assert got["h"].dtype == got["b"].dtype == np.float32
    assert got["h"].tolist() == [1.5, -0.25] and got["b"].tolist() == [1.5, -1.0]
    assert got["mask"].tolist() == [True, False] and got["i8"].tolist() == [[-3, 4]]


def test_safetensors_with_trailing_bytes_is_refused(tmp_path):
    path = tmp_path / "t.safetensors"
    readers.write_safetensors(str(path), {"a": np.ones(2, np.float32)})
    path.write_bytes(path.read_bytes() + b"\0\0\0\0")
    with pytest.raises(BadFile, match="4 bytes after the data"):
        readers.read_torch_weights(str(path))


def test_write_safetensors_refuses_other_dtypes(tmp_path):
    with pytest.raises(ValueError, match="float16"):
        readers.write_safetensors(str(tmp_path / "h.safetensors"), {"h": np.ones(2, np.float16)})


def test_readers_do_not_import_frameworks(bad, tmp_path):
    """The screen and the safetensors parser need neither Keras nor torch (each costs seconds to import)."""
    path = tmp_path / "t.safetensors"
    readers.write_safetensors(str(path), {"a": np.ones(2, np.float32)})
    code = ("import sys; from adapters import readers; "
            f"readers.read_torch_weights({str(path)!r}); readers.screen_keras_file({str(bad['inf_keras'])!r}); "
            f"readers.screen_keras_file({str(bad['inf_h5'])!r}); "
            "print(sorted(m for m in ('torch', 'keras', 'tensorflow') if m in sys.modules))")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ---- good Keras files ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def keras_files(tmp_path_factory):
    from adapters.tf_import import import_tf
    _, keras = import_tf()
    L = keras.layers
    d = tmp_path_factory.mktemp("keras")
    model = keras.Sequential([keras.Input((5,), dtype="int32"), L.Embedding(7, 3, mask_zero=True),
                              L.LSTM(4, return_sequences=True), L.Bidirectional(L.GRU(2, return_sequences=True)),
                              L.TimeDistributed(L.Dense(3))])
    inputs = keras.Input((5, 2))
    inner = keras.Sequential([keras.Input((5, 2)), L.Dense(2)])
    functional = keras.Model(inputs, L.Dense(1)(L.SimpleRNN(2)(L.Masking()(inner(inputs)))))  # a nested model, a mask
    paths = {"keras": d / "m.keras", "h5": d / "m.h5", "functional": d / "f.keras"}
    model.save(paths["keras"])
    model.save(paths["h5"])
    functional.save(paths["functional"])
    return model, paths


def _classes(layer: dict) -> list:
    """Layer classes in the config, depth first (wrapped layers after their wrapper)."""
    inner = layer["config"]
    out = [layer["class_name"]]
    for sub in inner.get("layers", []):
        out += _classes(sub)
    for key in ("layer", "backward_layer"):
        if isinstance(inner.get(key), dict):
            out += _classes(inner[key])
    return out


@pytest.mark.parametrize("fmt", ["keras", "h5"])
def test_keras_model_screens_and_loads(keras_files, fmt):
    model, paths = keras_files
    screened = readers.screen_keras_file(str(paths[fmt]))
    assert screened["format"] == fmt
    assert _classes(screened["config"]) == ["Sequential", "InputLayer", "Embedding", "LSTM", "Bidirectional", "GRU",
                                            "GRU", "TimeDistributed", "Dense"]
    loaded = readers.load_keras_model(str(paths[fmt]))
    assert [w.shape for w in loaded.weights] == [w.shape for w in model.weights]
    for got, want in zip(loaded.get_weights(), model.get_weights()):
        assert np.array_equal(got, want)
    ids = np.array([[1, 2, 3, 0, 0], [6, 5, 4, 3, 2]], np.int32)
    assert np.array_equal(np.asarray(loaded(ids)), np.asarray(model(ids)))


def test_functional_model_screens_and_loads(keras_files):
    _, paths = keras_files
    screened = readers.screen_keras_file(str(paths["functional"]))
    assert _classes(screened["config"]) == ["Functional", "InputLayer", "Sequential", "InputLayer", "Dense",
                                            "NotEqual", "Masking", "Any", "SimpleRNN", "Dense"]
    assert len(readers.load_keras_model(str(paths["functional"])).weights) == 7
