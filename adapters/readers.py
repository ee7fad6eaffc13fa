"""The only code that opens users' model files (torch, safetensors, Keras); every defect is one ``BadFile`` line."""
from __future__ import annotations

import json
import math
import os
import re
import struct
import warnings
import zipfile
from typing import Any

import numpy as np

from adapters.errors import BadInput

TORCH_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors")
KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")
MODEL_CLASSES = ("Sequential", "Functional", "Model")
LAYER_CLASSES = ("InputLayer", "Embedding", "Masking", "Dropout", "SimpleRNN", "LSTM", "GRU", "Bidirectional",
                 "Dense", "TimeDistributed")
CHECKPOINT_KEYS = ("state_dict", "model_state_dict")
# A Functional model records the mask of Masking / Embedding(mask_zero) as these operations of Keras's own
MASK_OPS = ("NotEqual", "Any")

_ZIP_MAGIC = b"PK\x03\x04"
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_MAX_HEADER = 100 << 20     # safetensors' own limit on its JSON header
_MAX_CONFIG = 64 << 20      # a config.json larger than this is no model of this tool's size, but a zip bomb
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class BadFile(BadInput):
    """A model file this tool cannot use; the message is one line: the path, then what was expected."""

    def __init__(self, path: str, reason: str):
        self.path, self.reason = str(path), _one_line(reason)
        super().__init__(f"{self.path}: {self.reason}")

    def __reduce__(self) -> tuple:  # the two-argument constructor would break pickling (pytest-xdist, multiprocessing)
        return BadFile, (self.path, self.reason)


def _one_line(text: str, limit: int = 400) -> str:
    text = " ".join(_ANSI.sub("", str(text)).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _first_line(error: BaseException, text: str | None = None) -> str:
    """The first non-empty line of an exception (or of ``text``); a line ending in ':' announces the next, so that
    one comes too."""
    lines = [l.strip() for l in (str(error) if text is None else text).splitlines() if l.strip()] or \
        [type(error).__name__]
    first = lines[0] + (" " + lines[1] if lines[0].endswith(":") and len(lines) > 1 else "")
    return _one_line(first, 240)


def _keras_reason(error: BaseException) -> str:
    """Keras nests a failure in one "could not be deserialized" wrapper per enclosing layer: the innermost tells."""
    text = str(error).rsplit("Exception encountered:", 1)[-1]
    return _first_line(error, text.split(" Full object config")[0])


def _open_check(path: str) -> int:
    """The file's size; BadFile when it is missing, a directory or empty."""
    if os.path.isdir(path):
        raise BadFile(path, "is a directory; expected a model file")
    if not os.path.exists(path):
        raise BadFile(path, "no such file")
    size = os.path.getsize(path)
    if size == 0:
        raise BadFile(path, "empty file (0 bytes)")
    return size


def _head(path: str, n: int = 8) -> bytes:
    with open(path, "rb") as f:
        return f.read(n)


def _suffix(path: str, accepted: tuple[str, ...], what: str) -> str:
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in accepted:
        raise BadFile(path, f"unsupported suffix {suffix or '(none)'!r} for {what}; accepted: {', '.join(accepted)}")
    return suffix


def _nonfinite(name: str, value: np.ndarray) -> str | None:
    if not np.issubdtype(value.dtype, np.inexact):
        return None
    counts = {"NaN": int(np.isnan(value).sum()), "infinite": int(np.isinf(value).sum())}
    if not any(counts.values()):
        return None
    what = " and ".join(f"{n} {kind}" for kind, n in counts.items() if n)
    return f"{name} holds {what} values (of {value.size}); expected finite weights"


# ---- torch state_dicts -------------------------------------------------------------------------------


def read_torch_weights(path: str) -> dict[str, np.ndarray]:
    """Tensor name -> array, in file order, from a torch state_dict (.pt/.pth/.bin, loaded with
    ``weights_only=True``) or a .safetensors file; bf16/f16 become float32, other dtypes stay."""
    path = str(path)
    _open_check(path)
    suffix = _suffix(path, TORCH_SUFFIXES, "torch weights")
    tensors = _read_safetensors(path) if suffix == ".safetensors" else _read_torch_pickle(path)
    if not tensors:
        raise BadFile(path, "holds no tensors; expected a state_dict of a model's weights")
    for name, value in tensors.items():
        problem = _nonfinite(f"tensor {name!r}", value)
        if problem:
            raise BadFile(path, problem)
    return tensors


def _read_torch_pickle(path: str) -> dict[str, np.ndarray]:
    import torch
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols before refusing them; the refusal says it
            warnings.simplefilter("ignore")
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - whatever torch raises on a bad file, the user gets one line
        raise BadFile(path, f"not a torch state_dict: {_torch_refusal(path, e)}") from None
    return _state_dict(path, obj, torch)


def _torch_refusal(path: str, error: Exception) -> str:
    """Why torch.load refused the file, short: a pickle that would run code, a damaged zip, or no torch file."""
    text = re.sub(r"\[enforce fail at [^\]]*\]\s*\.?\s*", "", _one_line(str(error), 4000))
    refused = re.search(r"Unsupported global: GLOBAL (\S+)", text)
    if refused:
        return ("the file is a pickle that would run code (torch.load weights_only=True refused it: it calls "
                f"{refused.group(1)})")
    head = _head(path)
    if head.startswith(_ZIP_MAGIC):
        detail = re.search(r"PytorchStreamReader failed .*?(?=\. |\.$|$)", text)
        return f"a damaged or truncated zip archive, or no torch archive ({detail.group(0) if detail else text[:200]})"
    unpickler = re.search(r"WeightsUnpickler error:\s*(.*?)(?: Check the documentation|$)", text)
    reason = unpickler.group(1).strip() if unpickler else (text[:200] or type(error).__name__)
    calls = _pickle_globals(path)
    if calls is None:
        return f"neither a zip archive written by torch.save nor a pickle (torch.load: {reason})"
    if calls:  # torch's own text goes on to suggest weights_only=False: not advice to pass on
        return ("the file is a pickle that would run code (torch.load weights_only=True refused it: it calls "
                f"{', '.join(calls[:3])})")
    return f"a pickle that torch.load weights_only=True cannot read ({reason})"


def _pickle_globals(path: str) -> list[str] | None:
    """The callables the file's first pickle would import, read with ``pickletools`` (which only parses opcodes
    and never runs them); None when it is no pickle. Only explains a refusal: safety comes from weights_only."""
    import pickletools
    calls: list[str] = []
    strings: list[str] = []          # STACK_GLOBAL takes its module and name from the last two strings pushed
    memo: dict[int, Any] = {}
    last: Any = None
    try:
        with open(path, "rb") as f:
            for op, arg, _ in pickletools.genops(f):
                if op.name == "GLOBAL" or op.name == "INST":
                    calls.append(str(arg).replace(" ", "."))
                elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                    calls.append(f"{strings[-2]}.{strings[-1]}")
                elif op.name in ("MEMOIZE", "PUT", "BINPUT", "LONG_BINPUT"):
                    memo[len(memo) if op.name == "MEMOIZE" else arg] = last
                    continue
                elif op.name in ("GET", "BINGET", "LONG_BINGET"):
                    last = memo.get(arg)
                    if isinstance(last, str):
                        strings.append(last)
                    continue
                last = arg if isinstance(arg, str) and ("UNICODE" in op.name or "STRING" in op.name) else None
                if isinstance(last, str):
                    strings.append(last)
    except Exception:  # noqa: BLE001 - any parse failure means "not a pickle"
        return None
    return list(dict.fromkeys(calls))


def _state_dict(path: str, obj: Any, torch: Any) -> dict[str, np.ndarray]:
    """A mapping of str -> tensor (a checkpoint holding one under state_dict / model_state_dict is unwrapped)."""
    if isinstance(obj, dict):
        wrapped = [k for k in CHECKPOINT_KEYS if k in obj and isinstance(obj[k], dict)]
        if len(wrapped) > 1:
            raise BadFile(path, f"a checkpoint holding both {' and '.join(wrapped)}; expected one state_dict")
        if wrapped:
            obj = obj[wrapped[0]]
    if not isinstance(obj, dict):
        raise BadFile(path, f"not a torch state_dict: the file holds a {type(obj).__name__}; expected a mapping of "
                            "tensor names to tensors (model.state_dict())")
    out: dict[str, np.ndarray] = {}
    for name, value in obj.items():
        if not isinstance(name, str):
            raise BadFile(path, f"not a torch state_dict: key {name!r} is of type {type(name).__name__}; expected "
                                "str keys")
        if not isinstance(value, torch.Tensor):
            raise BadFile(path, f"not a torch state_dict: key {name!r} holds a value of type {type(value).__name__}; "
                                "expected a tensor")
        out[name] = _to_numpy(path, name, value, torch)
    return out


def _to_numpy(path: str, name: str, value: Any, torch: Any) -> np.ndarray:
    value = value.detach()
    if value.layout != torch.strided:
        raise BadFile(path, f"tensor {name!r} is {value.layout}; expected a dense tensor")
    if value.dtype in (torch.bfloat16, torch.float16):  # numpy has no bf16; the reference works in float32/64
        value = value.float()
    try:
        return value.cpu().resolve_conj().resolve_neg().numpy()
    except (RuntimeError, TypeError, NotImplementedError) as e:
        raise BadFile(path, f"tensor {name!r} ({value.dtype}) cannot be read as an array: {_first_line(e)}") from None


# ---- safetensors --------------------------------------------------------------------------------------

_ST_READ = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2", "I64": "<i8", "I32": "<i4", "I16": "<i2",
            "I8": "i1", "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1", "BOOL": "u1"}
_ST_WRITE = {np.dtype(np.float64): "F64", np.dtype(np.float32): "F32", np.dtype(np.int64): "I64",
             np.dtype(np.int32): "I32"}


def write_safetensors(path: str, tensors: dict[str, np.ndarray]) -> None:
    """Write ``tensors`` (float64, float32, int64, int32) as a .safetensors file, in the dict's order."""
    header: dict[str, Any] = {}
    chunks, offset = [], 0
    for name, value in tensors.items():
        value = np.asarray(value)
        dtype = value.dtype.newbyteorder("=")
        if not isinstance(name, str) or name == "__metadata__":
            raise ValueError(f"safetensors tensor name {name!r}: expected a str other than '__metadata__'")
        if dtype not in _ST_WRITE:
            raise ValueError(f"tensor {name!r} is {value.dtype}; write_safetensors writes "
                             f"{', '.join(str(d) for d in _ST_WRITE)}")
        data = np.ascontiguousarray(value, dtype=value.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": _ST_WRITE[dtype], "shape": list(value.shape),
                        "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the format pads the header with spaces so that the buffer starts aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for data in chunks:
            f.write(data)


def _no_duplicates(pairs: list) -> dict:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError(f"duplicate key {next(k for k in keys if keys.count(k) > 1)!r}")
    return dict(pairs)


def _read_safetensors(path: str) -> dict[str, np.ndarray]:
    size = os.path.getsize(path)
    if size < 8:
        raise BadFile(path, f"truncated safetensors file: {size} bytes, shorter than its 8-byte header length")
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        if n > _MAX_HEADER or n > size - 8:
            raise BadFile(path, f"not a safetensors file or truncated: its header length says {n} bytes, the file "
                                f"has {size - 8} after it")
        raw = f.read(n)
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise BadFile(path, f"not a safetensors file: its header is not JSON ({_one_line(e, 120)})") from None
    if not isinstance(header, dict):
        raise BadFile(path, f"not a safetensors file: its header is a JSON {type(header).__name__}, expected an object")
    header.pop("__metadata__", None)
    buffer = size - 8 - n
    entries = [_st_entry(path, name, info) for name, info in header.items()]
    end = 0
    for name, begin, stop, _, _ in sorted(entries, key=lambda e: (e[1], e[2])):
        if begin != end:  # the format's buffer is indexed whole, without holes or overlaps
            raise BadFile(path, f"tensor {name!r}: data_offsets start at {begin}, expected {end} (the data of "
                                "tensors must follow each other without gaps or overlaps)")
        end = stop
    if end > buffer:
        raise BadFile(path, f"truncated safetensors file: the header describes {end} bytes of data, the file holds "
                            f"{buffer}")
    if end < buffer:
        raise BadFile(path, f"safetensors file with {buffer - end} bytes after the data its header describes")
    out: dict[str, np.ndarray] = {}
    with open(path, "rb") as f:
        for name, begin, stop, code, shape in entries:
            f.seek(8 + n + begin)
            data = np.frombuffer(bytearray(f.read(stop - begin)), dtype=_ST_READ[code]).reshape(shape)
            out[name] = _st_value(code, data)
    return out


def _st_entry(path: str, name: str, info: Any) -> tuple[str, int, int, str, tuple[int, ...]]:
    """(name, begin, end, dtype code, shape) after checking that the entry describes its bytes exactly."""
    def bad(what: str) -> BadFile:
        return BadFile(path, f"safetensors header, tensor {name!r}: {what}")
    if not isinstance(info, dict) or not {"dtype", "shape", "data_offsets"} <= info.keys():
        raise bad("expected an object with dtype, shape and data_offsets")
    code, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
    if code not in _ST_READ:
        raise bad(f"dtype {code!r} is not supported; supported: {', '.join(_ST_READ)}")
    if not (isinstance(shape, list) and all(type(d) is int and d >= 0 for d in shape)):
        raise bad(f"shape {shape!r} is not a list of non-negative integers")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(type(o) is int for o in offsets)
            and 0 <= offsets[0] <= offsets[1]):
        raise bad(f"data_offsets {offsets!r} is not [begin, end] with 0 <= begin <= end")
    need = math.prod(shape) * np.dtype(_ST_READ[code]).itemsize
    if offsets[1] - offsets[0] != need:
        raise bad(f"data_offsets {offsets} span {offsets[1] - offsets[0]} bytes, but {code} of shape {shape} needs "
                  f"{need}")
    return name, offsets[0], offsets[1], code, tuple(shape)


def _st_value(code: str, data: np.ndarray) -> np.ndarray:
    if code == "BF16":  # bf16 is the top half of a float32
        return (data.astype(np.uint32) << 16).view(np.float32)
    if code == "F16":
        return data.astype(np.float32)
    if code == "BOOL":
        return data != 0
    return data.astype(data.dtype.newbyteorder("="), copy=False)


# ---- Keras ---------------------------------------------------------------------------------------------


def screen_keras_file(path: str) -> dict:
    """``{"format": "keras" | "h5", "config": model config}`` read without Keras; BadFile unless every layer is
    one this tool knows (Lambdas and custom layers are refused before Keras would see them)."""
    path = str(path)
    _open_check(path)
    suffix = _suffix(path, KERAS_SUFFIXES, "a Keras model")
    fmt, config = ("keras", _keras_archive_config(path)) if suffix == ".keras" else ("h5", _h5_config(path))
    try:
        _screen_model(path, config, fmt)
        _screen_objects(path, config)
    except RecursionError:
        raise BadFile(path, "model config nested too deeply to be a model of this tool") from None
    version = _h5_keras_version(path) if fmt == "h5" else None
    if version is not None and not version.startswith(("2.", "3.")):
        raise BadFile(path, f"saved by Keras {version}; expected a model saved by Keras 2 or 3")
    from adapters.keras2_h5 import is_keras2
    # Keras 3 cannot load a Keras 2 .h5 (it refuses time_major): such files are read by adapters/keras2_h5.py
    return {"format": fmt, "config": config, "keras_version": version,
            "keras2": fmt == "h5" and is_keras2(version, config)}


def _h5_keras_version(path: str) -> str | None:
    """The root attribute ``keras_version`` (both Keras 2 and 3 write it, with ``backend``), or None."""
    import h5py
    try:
        with h5py.File(path, "r") as f:
            value = f.attrs.get("keras_version")
    except Exception:  # noqa: BLE001 - _h5_config has opened it already; a second failure is as bad
        return None
    if value is None:
        return None
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _keras_archive_config(path: str) -> dict:
    head = _head(path)
    try:
        archive = zipfile.ZipFile(path)
    except Exception as e:  # noqa: BLE001 - a hostile archive can make zipfile raise anything; it is one bad file
        what = ("a damaged or truncated zip archive" if head.startswith(_ZIP_MAGIC) else
                "an HDF5 file (a legacy model: name it .h5)" if head.startswith(_HDF5_MAGIC) else "not a zip archive")
        raise BadFile(path, f"{what}; expected a .keras archive written by model.save ({_one_line(e, 100)})") from None
    with archive:
        names = archive.namelist()
        if "config.json" not in names:
            raise BadFile(path, f"a zip archive but not a Keras archive: no config.json (holds "
                                f"{', '.join(names[:4]) or 'nothing'}); expected a .keras file written by model.save")
        if not {"model.weights.h5", "model.weights.npz"} & set(names):
            raise BadFile(path, "a Keras archive without weights (no model.weights.h5); expected model.save output")
        if archive.getinfo("config.json").file_size > _MAX_CONFIG:
            raise BadFile(path, "config.json is larger than 64 MiB; refused as a decompression bomb")
        try:
            raw = archive.read("config.json")
        except Exception as e:  # noqa: BLE001 - a CRC error, a cut member, encryption, an unknown compression
            raise BadFile(path, f"a damaged Keras archive: config.json cannot be read ({_one_line(e, 100)})") from None
    return _config_json(path, raw, "config.json")


def _h5_config(path: str) -> dict:
    import h5py
    head = _head(path)
    try:
        f = h5py.File(path, "r")
    except Exception as e:  # noqa: BLE001 - HDF5 reports damage as OSError, but a hostile file may find others
        what = ("a zip archive (a .keras archive: name it .keras)" if head.startswith(_ZIP_MAGIC) else
                "a damaged or truncated HDF5 file" if head.startswith(_HDF5_MAGIC) else "not an HDF5 file")
        raise BadFile(path, f"{what}; expected a Keras model saved with model.save ({_one_line(e, 120)})") from None
    with f:
        try:
            raw = f.attrs.get("model_config")
            weights_only = "layers" in f or "layer_names" in f.attrs or "model_weights" in f or "vars" in f
        except Exception as e:  # noqa: BLE001 - a damaged attribute or group table
            raise BadFile(path, f"a damaged HDF5 file ({_first_line(e)})") from None
    if raw is None and weights_only:
        raise BadFile(path, "holds weights only (save_weights); expected a whole model saved with model.save")
    if raw is None:
        raise BadFile(path, "an HDF5 file without a Keras model (no model_config attribute); expected a whole model "
                            "saved with model.save")
    return _config_json(path, raw, "model_config")


def _config_json(path: str, raw: Any, where: str) -> dict:
    try:
        config = json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else str(raw))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise BadFile(path, f"{where} is not JSON ({_one_line(e, 120)}); expected a Keras model config") from None
    if not isinstance(config, dict):
        raise BadFile(path, f"{where} holds a JSON {type(config).__name__}; expected a Keras model config object")
    return config


def _is_keras(module: Any) -> bool:
    return module is None or module == "keras" or (isinstance(module, str) and module.startswith("keras."))


def _screen_model(path: str, config: dict, fmt: str) -> None:
    cls = config.get("class_name")
    if cls not in MODEL_CLASSES or not _is_keras(config.get("module")) or \
            config.get("registered_name") not in (None, cls):
        shown = config.get("registered_name") or cls
        raise BadFile(path, f"unsupported model class {shown}; supported: {', '.join(MODEL_CLASSES)}")
    _screen_layer(path, config, fmt)


def _screen_layer(path: str, layer: Any, fmt: str) -> None:
    """Refuse a layer outside the allow-list, then the layers inside it (models, wrappers)."""
    if not isinstance(layer, dict) or not isinstance(layer.get("class_name"), str):
        raise BadFile(path, f"malformed model config: a layer is a {type(layer).__name__} without a class_name")
    cls, inner = layer["class_name"], layer.get("config")
    registered = layer.get("registered_name")
    name = inner.get("name", "?") if isinstance(inner, dict) else "?"
    if cls == "Lambda":
        raise BadFile(path, f"layer Lambda ({name}) holds Python code, which this tool will not run; replace it with "
                            f"supported layers: {', '.join(LAYER_CLASSES)}")
    if cls in MASK_OPS and layer.get("module") in (None, "keras.src.ops.numpy") and registered in (None, cls):
        if fmt == "h5":  # Keras 3's legacy loader looks op classes up among layers: "Unknown layer: 'NotEqual'"
            raise BadFile(path, f"a Functional model with a mask (operation {cls}, {name}) saved as legacy .h5, "
                                "which Keras 3 cannot load back; save it with model.save to a .keras file")
        return
    # a class outside Keras can borrow a Keras name: its module or registered name gives it away
    if cls not in LAYER_CLASSES + MODEL_CLASSES or not _is_keras(layer.get("module")) or registered not in (None, cls):
        raise BadFile(path, f"unsupported layer {registered or cls} ({name}); supported: {', '.join(LAYER_CLASSES)}")
    if cls in MODEL_CLASSES:
        layers = inner if isinstance(inner, list) else inner.get("layers") if isinstance(inner, dict) else None
        if not isinstance(layers, list):  # Keras 2 wrote a Sequential's config as its list of layers
            raise BadFile(path, f"malformed model config: {cls} ({name}) has no list of layers")
        for sub in layers:
            _screen_layer(path, sub, fmt)
    elif cls in ("Bidirectional", "TimeDistributed"):
        if not isinstance(inner, dict) or "layer" not in inner:
            raise BadFile(path, f"malformed model config: {cls} ({name}) wraps no layer")
        _screen_layer(path, inner["layer"], fmt)
        if cls == "Bidirectional" and inner.get("backward_layer") is not None:
            _screen_layer(path, inner["backward_layer"], fmt)


def _screen_objects(path: str, node: Any) -> None:
    """Every serialized object in the config (activations, initializers...) must be Keras's own or a registered
    function, and none may carry code; compile_config is skipped, since compile=False never reads it."""
    if isinstance(node, list):
        for item in node:
            _screen_objects(path, item)
        return
    if not isinstance(node, dict):
        return
    cls, module = node.get("class_name"), node.get("module")
    if cls == "__lambda__":
        raise BadFile(path, "the model config holds a serialized Python lambda, which this tool will not run")
    # "builtins" + "function" is how Keras names a function it looks up in its own registry, never imports
    if cls is not None and not _is_keras(module) and not (module == "builtins" and cls == "function"):
        raise BadFile(path, f"the model config holds {cls} from module {module}; this tool loads only Keras's objects")
    for key, value in node.items():
        if key != "compile_config":
            _screen_objects(path, value)


def load_keras_model(path: str) -> Any:
    """The Keras model in ``path`` (compile=False, safe_mode=True) after ``screen_keras_file``; BadFile for any
    refusal by Keras and for NaN/Inf weights."""
    path = str(path)
    if screen_keras_file(path)["keras2"]:
        raise BadFile(path, "saved by Keras 2, which Keras 3 cannot load (it refuses Keras 2's time_major option); "
                            "compare, inspect and port read it without Keras (adapters/keras2_h5.py)")
    from adapters.tf_import import import_tf
    _, keras = import_tf()
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as e:  # noqa: BLE001 - Keras raises many types on bad files; the user gets one line
        raise BadFile(path, f"Keras could not load it: {_keras_reason(e)}") from None
    for weight in model.weights:
        problem = _nonfinite(f"weight {weight.path}", np.asarray(keras.ops.convert_to_numpy(weight)))
        if problem:
            raise BadFile(path, problem)
    return model
