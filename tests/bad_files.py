"""Model files that are wrong in one way each (``make_bad_files``), for tests of the code that opens users' files."""
from __future__ import annotations

import json
import pathlib
import pickle
import struct
import zipfile
from typing import Any

import numpy as np

MARKER = "PWNED"

# Case name -> what is wrong. The suffix of each file decides which reader it is meant for.
CASES = {
    "missing_pt": "no file at the path (.pt)",
    "missing_keras": "no file at the path (.keras)",
    "directory_pt": "a directory named like a .pt file",
    "directory_keras": "a directory named like a .keras file",
    "empty_pt": "0 bytes (.pt)",
    "empty_keras": "0 bytes (.keras)",
    "empty_h5": "0 bytes (.h5)",
    "empty_safetensors": "0 bytes (.safetensors)",
    "truncated_pt": "a torch.save zip cut in half",
    "truncated_keras": "a .keras archive cut in half",
    "truncated_h5": "a legacy .h5 model cut in half",
    "random_pt": "random bytes (.pt)",
    "random_keras": "random bytes (.keras)",
    "random_h5": "random bytes (.h5)",
    "random_safetensors": "random bytes (.safetensors)",
    "unsupported_suffix": "a good torch state_dict named .ckpt",
    "zip_not_keras": "a zip archive without config.json, named .keras",
    "pickle_code_pt": "torch.save of an object whose __reduce__ creates the marker file",
    "pickle_code_bin": "plain pickle (protocol 2) of the same payload",
    "pickle_code_pth": "plain pickle (protocol 5, framed) of the same payload",
    "not_mapping_pt": "torch.save of a bare tensor",
    "non_tensor_value_pt": "a state_dict with an int among the tensors",
    "non_str_key_pt": "a state_dict keyed by an int",
    "nan_pt": "a state_dict with NaN in one tensor",
    "nan_safetensors": "a safetensors file with NaN in one tensor",
    "truncated_safetensors": "a safetensors file missing its last bytes",
    "lying_offsets_safetensors": "a safetensors header whose data_offsets do not match the shape",
    "overlapping_safetensors": "a safetensors header with two tensors on the same bytes",
    "lambda_keras": "a Keras model with a Lambda layer (.keras)",
    "lambda_h5": "a Keras model with a Lambda layer (legacy .h5)",
    "lambda_nested_keras": "a Lambda inside TimeDistributed (.keras)",
    "custom_layer_keras": "a Keras model with a registered custom layer (.keras)",
    "custom_layer_h5": "a Keras model with a registered custom layer (legacy .h5)",
    "unsupported_layer_keras": "a Keras model with Conv1D",
    "nested_unsupported_keras": "Bidirectional(RNN(LSTMCell)): an unsupported layer inside a wrapper",
    "foreign_module_keras": "a .keras config whose initializer names module os",
    "inf_keras": "a Keras model with Inf in a kernel (.keras)",
    "inf_h5": "a Keras model with Inf in a kernel (legacy .h5)",
    "weights_only_h5": "model.save_weights output renamed to .h5",
    "bad_weights_keras": "a .keras archive with a sound config whose model.weights.h5 is random bytes",
    "masked_functional_h5": "a Functional model with Masking saved as legacy .h5 (Keras 3.15 cannot load it back)",
}


def pwned_marker(directory: pathlib.Path) -> pathlib.Path:
    """Where the code-running pickles in ``directory`` would create a file if anything unpickled them."""
    return pathlib.Path(directory) / MARKER


class CreatesFile:
    """Unpickling this creates (an empty) ``marker``: proof that loading ran code from the file."""

    def __init__(self, marker: pathlib.Path):
        self.marker = str(marker)

    def __reduce__(self) -> tuple:
        return open, (self.marker, "w")


def write_code_pickle(path: pathlib.Path, marker: pathlib.Path, how: str) -> None:
    """A state_dict-looking file with the payload: ``how`` is "torch" (torch.save zip), "protocol2" or "protocol5"."""
    if how == "torch":
        import torch
        torch.save({"weight": torch.zeros(2), "payload": CreatesFile(marker)}, path)
        return
    with open(path, "wb") as f:  # a list, not an array: the payload is then the pickle's only import
        pickle.dump({"weight": [0.0, 0.0], "payload": CreatesFile(marker)}, f, protocol=2 if how == "protocol2" else 5)


def _half(src: pathlib.Path, dst: pathlib.Path) -> None:
    data = src.read_bytes()
    dst.write_bytes(data[:len(data) // 2])


def write_raw_safetensors(path: pathlib.Path, header: dict, buffer: bytes) -> None:
    """A safetensors file with exactly this header and buffer (nothing checked: for files that lie)."""
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + buffer)


def _torch_cases(d: pathlib.Path) -> dict[str, pathlib.Path]:
    import torch

    from adapters.readers import write_safetensors
    out = {}
    good = {"weight": torch.arange(6, dtype=torch.float32).reshape(2, 3), "bias": torch.ones(2)}
    torch.save(good, d / "good.pt")
    _half(d / "good.pt", out.setdefault("truncated_pt", d / "truncated.pt"))
    torch.save(good, out.setdefault("unsupported_suffix", d / "weights.ckpt"))
    for name, how in (("pickle_code_pt", "torch"), ("pickle_code_bin", "protocol2"), ("pickle_code_pth", "protocol5")):
        write_code_pickle(out.setdefault(name, d / f"{name}.{name.rsplit('_', 1)[1]}"), pwned_marker(d), how)
    torch.save(torch.zeros(3), out.setdefault("not_mapping_pt", d / "tensor.pt"))
    torch.save({"weight": torch.zeros(2), "step": 3}, out.setdefault("non_tensor_value_pt", d / "step.pt"))
    torch.save({0: torch.zeros(2)}, out.setdefault("non_str_key_pt", d / "int_key.pt"))
    torch.save({"weight": torch.tensor([1.0, float("nan"), 2.0]), "bias": torch.zeros(1)},
               out.setdefault("nan_pt", d / "nan.pt"))
    write_safetensors(str(out.setdefault("nan_safetensors", d / "nan.safetensors")),
                      {"bias": np.zeros(2), "weight": np.array([np.nan, 1.0, np.nan], np.float32)})
    write_safetensors(str(d / "good.safetensors"), {k: v.numpy() for k, v in good.items()})
    data = (d / "good.safetensors").read_bytes()
    out["truncated_safetensors"] = d / "truncated.safetensors"
    out["truncated_safetensors"].write_bytes(data[:-4])
    w = np.arange(4, dtype="<f4").tobytes()
    write_raw_safetensors(out.setdefault("lying_offsets_safetensors", d / "lying.safetensors"),
                     {"weight": {"dtype": "F32", "shape": [4], "data_offsets": [0, 8]}}, w)
    write_raw_safetensors(out.setdefault("overlapping_safetensors", d / "overlap.safetensors"),
                     {"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
                      "b": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, w)
    return out


_CUSTOM: list = []


def _custom_layer() -> Any:
    """A registered custom layer class (registered once per process: Keras refuses a second registration)."""
    if not _CUSTOM:
        from adapters.tf_import import import_tf
        _, keras = import_tf()

        @keras.saving.register_keras_serializable(package="bad_files")
        class Doubler(keras.layers.Layer):
            def call(self, x: Any) -> Any:
                return 2 * x
        _CUSTOM.append(Doubler)
    return _CUSTOM[0]


def _keras_cases(d: pathlib.Path) -> dict[str, pathlib.Path]:
    from adapters.tf_import import import_tf
    _, keras = import_tf()
    L = keras.layers
    out = {}

    def save(name: str, layers: list, suffixes: tuple[str, ...] = (".keras",)) -> keras.Model:
        model = keras.Sequential([keras.Input((3, 2))] + layers)
        for suffix in suffixes:
            key = f"{name}_{suffix[1:]}"
            out[key] = d / f"{key}{suffix}"
            model.save(out[key])
        return model

    # explicit names: Keras's automatic ones count up per process (lambda_2 after other tests made lambdas)
    save("lambda", [L.Lambda(lambda x: x * 2, name="lambda")], (".keras", ".h5"))
    save("lambda_nested", [L.TimeDistributed(L.Lambda(lambda x: x + 1, name="lambda_1"))])
    save("custom_layer", [_custom_layer()(name="doubler")], (".keras", ".h5"))
    save("unsupported_layer", [L.Conv1D(2, 2, name="conv1d")])
    save("nested_unsupported", [L.Bidirectional(L.RNN(L.LSTMCell(2), name="rnn"), name="bidirectional")])
    model = keras.Sequential([keras.Input((3, 2)), L.LSTM(2, name="lstm"), L.Dense(1, name="dense")])
    model.save(d / "good.keras")
    model.save(d / "good.h5")
    _half(d / "good.keras", out.setdefault("truncated_keras", d / "truncated.keras"))
    _half(d / "good.h5", out.setdefault("truncated_h5", d / "truncated.h5"))
    model.save_weights(d / "lstm.weights.h5")
    (d / "lstm.weights.h5").rename(out.setdefault("weights_only_h5", d / "weights_only.h5"))
    with zipfile.ZipFile(d / "good.keras") as z:
        config = json.loads(z.read("config.json"))
        members = {n: z.read(n) for n in z.namelist()}
    config["config"]["layers"][1]["config"]["kernel_initializer"] = {
        "module": "os", "class_name": "system", "config": {"command": "echo hi"}, "registered_name": None}
    members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(out.setdefault("foreign_module_keras", d / "foreign_module.keras"), "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    with zipfile.ZipFile(d / "good.keras") as z, \
            zipfile.ZipFile(out.setdefault("bad_weights_keras", d / "bad_weights.keras"), "w") as bad:
        for name in z.namelist():
            bad.writestr(name, np.random.default_rng(1).bytes(256) if name == "model.weights.h5" else z.read(name))
    inputs = keras.Input((3, 2))
    masked = keras.Model(inputs, L.LSTM(2)(L.Masking()(inputs)))
    masked.save(out.setdefault("masked_functional_h5", d / "masked_functional.h5"))
    kernel, *rest = model.get_weights()
    kernel[0, 1] = np.inf
    model.set_weights([kernel, *rest])
    for suffix in (".keras", ".h5"):
        out[f"inf_{suffix[1:]}"] = d / f"inf{suffix}"
        model.save(out[f"inf_{suffix[1:]}"])
    return out


def make_bad_files(directory: pathlib.Path) -> dict[str, pathlib.Path]:
    """Case name (``CASES``) -> a file (or directory, or absent path) in ``directory`` that is wrong in that way."""
    d = pathlib.Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    out = {"missing_pt": d / "missing.pt", "missing_keras": d / "missing.keras",
           "directory_pt": d / "a_directory.pt", "directory_keras": d / "a_directory.keras"}
    out["directory_pt"].mkdir(exist_ok=True)
    out["directory_keras"].mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    for suffix in ("pt", "keras", "h5", "safetensors"):
        out[f"empty_{suffix}"] = d / f"empty.{suffix}"
        out[f"empty_{suffix}"].write_bytes(b"")
        out[f"random_{suffix}"] = d / f"random.{suffix}"
        out[f"random_{suffix}"].write_bytes(rng.bytes(512))
    out["zip_not_keras"] = d / "not_keras.keras"
    with zipfile.ZipFile(out["zip_not_keras"], "w") as z:
        z.writestr("readme.txt", "not a model")
    out.update(_torch_cases(d))
    out.update(_keras_cases(d))
    assert set(out) == set(CASES), set(out) ^ set(CASES)
    return {name: out[name] for name in CASES}
