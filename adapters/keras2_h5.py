"""Keras 2 (tf.keras <= 2.15) ``.h5`` models read with h5py alone: the config as a StackSpec, the weights in canonical layout."""
# Keras 3 cannot load these files ("Unrecognized keyword arguments passed to LSTM: {'time_major': False}"), so nothing
# here imports Keras or runs anything from the file: the architecture is the JSON of the root attribute
# ``model_config``, the weights are the datasets under ``model_weights/<layer>/`` named by each layer group's
# ``weight_names`` attribute. Activations keep Keras 2's definitions: its ``hard_sigmoid`` is clip(0.2 x + 0.5, 0, 1)
# (the reference's ``hard_sigmoid_keras2``), not Keras 3's relu6(x + 3) / 6; its sigmoid, tanh, relu (alpha 0, no
# max_value, threshold 0), linear and softmax are the standard functions (keras 2.15 ``activations.py`` and
# ``backend.py``). Every option that changes what the model computes is either described or refused with one line
# naming the layer and the option; training-only options (initializers, regularizers, constraints, dropout rates)
# are ignored, since inference does not read them. Besides ``adapters/readers.py`` (which screens the file first),
# this is the only module that opens a user's file.
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from adapters import tables
from adapters.readers import BadFile, _nonfinite, screen_keras_file
from reference import stack
from reference.layers import Dense, Dropout, Embedding, Masking, Recurrent
from reference.stack import StackSpec

# Keras 2 name -> the reference's name for the same function (Keras 2's definitions)
RECURRENT_ACTIVATIONS = {"tanh": "tanh", "sigmoid": "sigmoid", "relu": "relu", "linear": "linear",
                         "hard_sigmoid": "hard_sigmoid_keras2"}
DENSE_ACTIVATIONS = {"linear": "linear", "relu": "relu", "tanh": "tanh", "sigmoid": "sigmoid", "softmax": "softmax"}
CELLS = {"SimpleRNN": "simple_rnn", "LSTM": "lstm", "GRU": "gru"}
FLOAT_DTYPES = ("float32", "float64")
KERAS2_HARD_SIGMOID = "clip(0.2 x + 0.5, 0, 1)"
KERAS3_HARD_SIGMOID = "relu6(x + 3) / 6"

# Options every Keras 2 layer config may carry that do not change what inference computes.
_BASE = {"name", "trainable", "dtype", "batch_input_shape", "batch_size"}
_TRAINING_ONLY = {"kernel_initializer", "recurrent_initializer", "bias_initializer", "embeddings_initializer",
                  "kernel_regularizer", "recurrent_regularizer", "bias_regularizer", "activity_regularizer",
                  "embeddings_regularizer", "kernel_constraint", "recurrent_constraint", "bias_constraint",
                  "embeddings_constraint", "unit_forget_bias", "dropout", "recurrent_dropout", "noise_shape", "seed"}
# Read below, each for what it means; any key outside these and _BASE | _TRAINING_ONLY is refused by name.
_READ = {
    "InputLayer": {"sparse", "ragged"},
    "Embedding": {"input_dim", "output_dim", "mask_zero", "input_length", "sparse"},
    "Masking": {"mask_value"},
    "Dropout": {"rate"},
    "Dense": {"units", "activation", "use_bias"},
    "TimeDistributed": {"layer"},
    "Bidirectional": {"layer", "merge_mode", "backward_layer"},
    # implementation (1 or 2) and unroll choose how the same formula is executed; time_major the input layout
    "SimpleRNN": {"units", "activation", "use_bias", "return_sequences", "return_state", "go_backwards", "stateful",
                  "unroll", "time_major", "zero_output_for_mask"},
    "LSTM": {"units", "activation", "recurrent_activation", "use_bias", "return_sequences", "return_state",
             "go_backwards", "stateful", "unroll", "time_major", "implementation", "zero_output_for_mask"},
    "GRU": {"units", "activation", "recurrent_activation", "use_bias", "return_sequences", "return_state",
            "go_backwards", "stateful", "unroll", "time_major", "implementation", "reset_after",
            "zero_output_for_mask"},
}


@dataclass(frozen=True)
class Keras2Model:
    """What a Keras 2 .h5 holds, read without Keras."""

    path: str
    keras_version: str
    backend: str | None
    spec: StackSpec                       # Keras 2's definitions (hard_sigmoid -> "hard_sigmoid_keras2")
    params: dict[str, np.ndarray]         # canonical, float64 (the stored float32 values, exactly)
    steps: int | None                     # the input length the file fixes, if any
    tensor_name: dict[str, str]           # canonical -> "Keras 2 <layer>/<weight name>"
    hard_sigmoid_layers: tuple[str, ...]  # layers that use Keras 2's hard_sigmoid


def keras_version(path: str) -> str | None:
    """The ``keras_version`` root attribute of an HDF5 model file (None when absent or unreadable)."""
    import h5py
    try:
        with h5py.File(str(path), "r") as f:
            value = f.attrs.get("keras_version")
    except Exception:  # noqa: BLE001 - not an HDF5 file: screen_keras_file says what it is
        return None
    return _text(value) if value is not None else None


def is_keras2(version: str | None, config: dict | None = None) -> bool:
    """A file saved by Keras 2: its keras_version is 2.x; without one, a recurrent layer carries ``time_major``,
    which only Keras 2 writes (Keras 3 refuses the key)."""
    if version is not None:
        return version.startswith("2.")
    return config is not None and '"time_major"' in _json(config)


def _json(config: dict) -> str:
    import json
    return json.dumps(config)


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


# ---------------------------------------------------------------------------------------------- describe

class _Refusal(Exception):
    """A layer or option this reader cannot describe; becomes one BadFile line."""


def _where(cls: str, config: dict) -> str:
    return f"layer {cls} ({config.get('name', '?')})"


def _check_keys(cls: str, config: dict) -> None:
    unknown = sorted(set(config) - _BASE - _TRAINING_ONLY - _READ[cls])
    if unknown:
        raise _Refusal(f"{_where(cls, config)}: option {unknown[0]}={config[unknown[0]]!r} is unknown to this reader; "
                       "it reads the options of Keras 2's standard layers")
    dtype = config.get("dtype")
    if isinstance(dtype, dict):  # a dtype policy: mixed precision computes in float16 / bfloat16
        dtype = (dtype.get("config") or {}).get("name")
    if cls != "InputLayer" and dtype is not None and dtype not in FLOAT_DTYPES:
        raise _Refusal(f"{_where(cls, config)}: option dtype={dtype!r}; expected float32 or float64 (mixed precision "
                       "is not described)")


def _activation(cls: str, config: dict, key: str, allowed: dict[str, str]) -> str:
    value = config.get(key, "linear" if key == "activation" and cls == "Dense" else
                       "tanh" if key == "activation" else "hard_sigmoid")  # Keras 2.0-2.2 default gate activation
    if isinstance(value, dict) and isinstance(value.get("config"), str) and \
            value.get("module") in (None, "keras.activations", "builtins"):
        value = value["config"]  # a built-in function serialized as an object names itself in its config
    if value is None:
        value = "linear"  # Keras 2 reads activation=None as linear
    if not isinstance(value, str) or value not in allowed:
        raise _Refusal(f"{_where(cls, config)}: option {key}={value!r} is not supported; expected one of "
                       f"{', '.join(allowed)}")
    return allowed[value]


def _recurrent(cls: str, config: dict, bidirectional: bool = False) -> dict[str, Any]:
    """The Recurrent options of one SimpleRNN / LSTM / GRU config."""
    _check_keys(cls, config)
    where = _where(cls, config)
    for key, why in (("return_state", "the model outputs its states"), ("stateful", "state carried between batches"),
                     ("time_major", "inputs laid out (steps, batch, features)")):
        if config.get(key):
            raise _Refusal(f"{where}: option {key}=True ({why}) is not supported")
    if config.get("unroll") and config.get("go_backwards"):
        # Keras 3 zeroes the wrong steps of a masked batch in this combination (adapters/keras_stack.py); not
        # measured under Keras 2, so not described rather than described wrongly
        raise _Refusal(f"{where}: option unroll=True with go_backwards=True is not supported")
    units = config.get("units")
    if not isinstance(units, int) or units < 1:
        raise _Refusal(f"{where}: option units={units!r}; expected a positive integer")
    opts: dict[str, Any] = {
        "cell": CELLS[cls], "hidden_size": units,
        "activation": _activation(cls, config, "activation", RECURRENT_ACTIVATIONS),
        "use_bias": bool(config.get("use_bias", True)),
        "return_sequences": bool(config.get("return_sequences", False)),
        # Keras 2 RNNs carry the previous output through masked steps unless told to zero it; Bidirectional
        # forces zero_output_for_mask = return_sequences on both of its layers (keras 2.15 bidirectional.py)
        "zero_output_for_mask": bool(config.get("return_sequences", False)) if bidirectional
        else bool(config.get("zero_output_for_mask", False))}
    if cls != "SimpleRNN":
        opts["recurrent_activation"] = _activation(cls, config, "recurrent_activation", RECURRENT_ACTIVATIONS)
    if cls == "GRU":
        opts["reset_after"] = config.get("reset_after")  # None: decided from the bias's shape (Keras <= 2.2 files)
    if config.get("go_backwards"):
        opts["go_backwards"] = True
    return opts


def _inner(outer: str, config: dict, key: str) -> tuple[str, dict]:
    layer = config.get(key)
    if not isinstance(layer, dict) or not isinstance(layer.get("config"), dict):
        raise _Refusal(f"{_where(outer, config)}: option {key} holds no layer config")
    return layer.get("class_name"), layer["config"]


def _describe_layer(cls: str, config: dict) -> Any:
    """The reference layer one Keras 2 layer config is (GRU reset_after may still be None)."""
    where = _where(cls, config)
    if cls not in _READ or cls == "InputLayer":
        raise _Refusal(f"unsupported layer {cls} ({config.get('name', '?')})")
    name = str(config.get("name"))
    _check_keys(cls, config)
    if cls == "Embedding":
        if config.get("sparse"):
            raise _Refusal(f"{where}: option sparse=True is not supported")
        return Embedding(name, int(config["input_dim"]), int(config["output_dim"]), bool(config.get("mask_zero")))
    if cls == "Masking":
        return Masking(name, float(config.get("mask_value", 0.0)))
    if cls == "Dropout":
        return Dropout(name, float(config.get("rate", 0.0)))
    if cls == "Dense":
        return Dense(name, int(config["units"]), _activation(cls, config, "activation", DENSE_ACTIVATIONS),
                     bool(config.get("use_bias", True)))
    if cls == "TimeDistributed":  # TimeDistributed(Dense) is Dense on the last axis
        inner_cls, inner = _inner(cls, config, "layer")
        if inner_cls != "Dense":
            raise _Refusal(f"{where}: it wraps {inner_cls}; only TimeDistributed(Dense) is supported")
        _check_keys("Dense", inner)
        return Dense(name, int(inner["units"]), _activation("Dense", inner, "activation", DENSE_ACTIVATIONS),
                     bool(inner.get("use_bias", True)))
    if cls in CELLS:
        return Recurrent(name, **_recurrent(cls, config))
    # Bidirectional
    inner_cls, inner = _inner(cls, config, "layer")
    if inner_cls not in CELLS:
        raise _Refusal(f"{where}: it wraps {inner_cls}; expected one of {', '.join(CELLS)}")
    merge = config.get("merge_mode", "concat")
    if merge not in ("concat", "sum", "mul", "ave"):
        raise _Refusal(f"{where}: option merge_mode={merge!r} (two outputs) is not supported")
    if inner.get("go_backwards"):
        raise _Refusal(f"{where}: its forward layer {inner.get('name')} has go_backwards=True")
    opts = _recurrent(inner_cls, inner, bidirectional=True)
    if config.get("backward_layer") is not None:
        bw_cls, bw = _inner(cls, config, "backward_layer")
        if bw_cls != inner_cls:
            raise _Refusal(f"{where}: backward layer is {bw_cls}, forward layer {inner_cls}; expected the same class")
        bw_opts = _recurrent(bw_cls, bw, bidirectional=True)
        bw_opts.pop("go_backwards", None)  # the backward layer runs backwards by definition
        differ = sorted(k for k in opts if opts[k] != bw_opts.get(k))
        if differ:
            raise _Refusal(f"{where}: backward layer differs from the forward layer in option {differ[0]}")
    return Recurrent(name, bidirectional=True, merge_mode=merge, **opts)


def _model_layers(config: dict) -> tuple[str, list[dict]]:
    """(model name, layer configs in call order, InputLayer included) of a Sequential or a linear Functional."""
    cls, inner = config.get("class_name"), config.get("config")
    if cls == "Sequential":
        layers = inner if isinstance(inner, list) else inner.get("layers")  # Keras <= 2.2 wrote the list itself
        return (inner.get("name", "sequential") if isinstance(inner, dict) else "sequential"), list(layers)
    layers = inner.get("layers", [])
    by_name = {l.get("name") or l.get("config", {}).get("name"): l for l in layers}
    ins, outs = inner.get("input_layers", []), inner.get("output_layers", [])
    if len(ins) != 1 or len(outs) != 1:  # one input: [[name, 0, 0]]; Keras 2 also wrote a bare [name, 0, 0]
        if not (len(ins) == 3 and isinstance(ins[0], str) and len(outs) == 3 and isinstance(outs[0], str)):
            raise _Refusal(f"model {inner.get('name')}: expected one input and one output (a linear stack), found "
                           f"{len(ins)} inputs and {len(outs)} outputs")
        ins, outs = [ins], [outs]
    chain, name = [], outs[0][0]
    while True:  # walk back from the output: each layer called once, on the previous layer's output alone
        layer = by_name.get(name)
        if layer is None:
            raise _Refusal(f"model {inner.get('name')}: layer {name} is named as an input but not defined")
        chain.append(layer)
        if name == ins[0][0]:
            break
        nodes = layer.get("inbound_nodes") or []
        tensors = nodes[0] if len(nodes) == 1 and isinstance(nodes[0], list) else None
        if tensors is None or len(tensors) != 1 or not isinstance(tensors[0], list) or \
                (len(tensors[0]) > 3 and tensors[0][3]):
            raise _Refusal(f"model {inner.get('name')}: layer {layer.get('class_name')} ({name}) is not called once "
                           "on the previous layer's output alone; only linear stacks are supported")
        name = tensors[0][0]
    chain.reverse()
    if len(chain) != len(layers):
        extra = [n for n in by_name if n not in {l.get("name") for l in chain}]
        raise _Refusal(f"model {inner.get('name')}: layers {extra} are not on the one path from input to output")
    return inner.get("name", "model"), chain


def _input_shape(layers: list[dict]) -> list | None:
    for layer in layers[:2]:
        shape = (layer.get("config") or {}).get("batch_input_shape")
        if shape is not None:
            return list(shape)
    return None


def describe(config: dict, name: str) -> tuple[StackSpec, int | None]:
    """The StackSpec of a Keras 2 model config (GRU reset_after still None where the config omits it) and the
    number of steps the input shape fixes; ``_Refusal`` for what cannot be described."""
    model_name, configs = _model_layers(config)
    layers = []
    for layer in configs:
        cls, inner = layer.get("class_name"), layer.get("config")
        if not isinstance(inner, dict):
            raise _Refusal(f"malformed model config: layer {cls} has no config")
        if cls == "InputLayer":
            _check_keys(cls, inner)
            continue
        layers.append(_describe_layer(cls, inner))
    if not layers:
        raise _Refusal(f"model {model_name} has no layers")
    shape = _input_shape(configs)
    if isinstance(layers[0], Embedding):
        input_size = 0
    elif shape is None or len(shape) != 3 or not isinstance(shape[-1], int):
        raise _Refusal(f"model {model_name}: expected inputs (batch, steps, features), got batch_input_shape {shape}")
    else:
        input_size = shape[-1]
    steps = shape[1] if shape is not None and len(shape) > 1 and isinstance(shape[1], int) else None
    return _spec(name, input_size, tuple(layers)), steps


def _spec(name: str, input_size: int, layers: tuple) -> StackSpec:
    softmax = isinstance(layers[-1], Dense) and layers[-1].activation == "softmax"
    return StackSpec(name, input_size, layers, "prob_ce" if softmax else "mse", "argmax" if softmax else "abs_tol")


# ----------------------------------------------------------------------------------------------- weights

def _suffix(weight_name: str) -> str:
    return weight_name.rsplit("/", 1)[-1].split(":")[0]


def _layer_weights(path: str, group: Any, layer_name: str) -> list[tuple[str, np.ndarray]]:
    """(weight name, array) of one layer group, in the order of its ``weight_names``."""
    if layer_name not in group:
        raise BadFile(path, f"model_weights has no group for layer {layer_name}; expected one per layer")
    g = group[layer_name]
    names = [_text(n) for n in g.attrs.get("weight_names", [])]
    out = []
    for n in names:
        if n not in g:
            raise BadFile(path, f"layer {layer_name}: weight {n} is named in weight_names but not stored")
        value = g[n]
        if not hasattr(value, "shape") or value.dtype.kind != "f":
            raise BadFile(path, f"layer {layer_name}: weight {n} is not an array of floats")
        out.append((n, np.asarray(value[()])))
    return out


def _by_suffix(path: str, layer: str, weights: list[tuple[str, np.ndarray]], expected: tuple[str, ...]
               ) -> dict[str, tuple[str, np.ndarray]]:
    got = {_suffix(n): (n, v) for n, v in weights}
    if sorted(got) != sorted(expected) or len(got) != len(weights):
        raise BadFile(path, f"layer {layer}: holds weights {[n for n, _ in weights]}; expected "
                            f"{', '.join(expected) or 'none'}")
    return got


def _directions(path: str, layer: Recurrent, weights: list[tuple[str, np.ndarray]]
                ) -> dict[str, list[tuple[str, np.ndarray]]]:
    if not layer.bidirectional:
        return {"fw": weights}
    # Keras 2 names them <wrapper>/forward_<layer>/... and <wrapper>/backward_<layer>/...; without those names,
    # its order (forward layer's weights first) decides
    fw = [w for w in weights if "/forward_" in w[0]]
    bw = [w for w in weights if "/backward_" in w[0]]
    if len(fw) + len(bw) != len(weights) or len(fw) != len(bw):
        half = len(weights) // 2
        fw, bw = weights[:half], weights[half:]
    return {"fw": fw, "bw": bw}


def _table(layer: Recurrent) -> tuple:
    if layer.cell == "gru":
        return tables.KERAS_GRU_AFTER if layer.reset_after else tables.KERAS_GRU_BEFORE
    return tables.KERAS_LSTM if layer.cell == "lstm" else tables.KERAS_SIMPLE_RNN


def _reset_after(path: str, layer: Recurrent, weights: list[tuple[str, np.ndarray]]) -> Recurrent:
    """A GRU whose config omits reset_after (Keras <= 2.2): a (2, 3H) bias says True, a (3H,) bias False."""
    if layer.cell != "gru" or isinstance(layer.reset_after, bool):
        return layer
    bias = [v for n, v in weights if _suffix(n) == "bias"]
    return replace(layer, reset_after=bool(bias and bias[0].ndim == 2))


def read_weights(path: str, f: Any, spec: StackSpec) -> tuple[StackSpec, dict[str, np.ndarray], dict[str, str]]:
    """The spec (GRU reset_after settled), its canonical float64 parameters and each one's name in the file."""
    group = f["model_weights"] if "model_weights" in f else f  # a model file nests them; a weights file does not
    layers, params, names = [], {}, {}
    for layer in spec.layers:
        weights = _layer_weights(path, group, layer.name) if isinstance(layer, (Embedding, Dense, Recurrent)) else []
        if isinstance(layer, Recurrent):
            layer = _reset_after(path, layer, weights)
            for d, ws in _directions(path, layer, weights).items():
                expected = ("kernel", "recurrent_kernel") + (("bias",) if layer.use_bias else ())
                found = _by_suffix(path, f"{layer.name}{' (' + d + ')' if layer.bidirectional else ''}", ws, expected)
                arrays = {k: v for k, (_, v) in found.items()}
                pre = f"{layer.name}/{d}"
                for canonical, value in tables.to_canonical(_table(layer), tables.split_rows(arrays), pre).items():
                    params[canonical] = value
                    suffix = canonical.rsplit("/", 1)[-1]
                    row = {"bias": "[0]", "recurrent_bias": "[1]"}.get(suffix, "") if \
                        layer.cell == "gru" and layer.reset_after else ""
                    names[canonical] = f"Keras 2 {found['bias' if suffix == 'recurrent_bias' else suffix][0]}{row}"
        elif isinstance(layer, (Embedding, Dense)):
            expected = ("embeddings",) if isinstance(layer, Embedding) else \
                ("kernel",) + (("bias",) if layer.use_bias else ())
            for suffix, (n, v) in _by_suffix(path, layer.name, weights, expected).items():
                params[f"{layer.name}/{suffix}"] = np.asarray(v, dtype=np.float64)
                names[f"{layer.name}/{suffix}"] = f"Keras 2 {n}"
        layers.append(layer)
    spec = replace(spec, layers=tuple(layers))
    try:
        stack.check_params(spec, params)
    except ValueError as e:
        raise BadFile(path, f"weights do not fit the model config: {e}") from None
    for name, value in params.items():
        problem = _nonfinite(f"weight {names[name]}", value)
        if problem:
            raise BadFile(path, problem)
    return spec, {n: params[n] for n in stack.param_shapes(spec)}, names


def read(path: str) -> Keras2Model:
    """A Keras 2 .h5 model file, screened (readers.screen_keras_file), described and its weights read; every
    defect is one BadFile line naming the layer and the option."""
    import h5py
    path = str(path)
    screened = screen_keras_file(path)
    if screened["format"] != "h5":
        raise BadFile(path, "not an HDF5 model; Keras 2 files are read from .h5")
    try:
        spec, steps = describe(screened["config"], os.path.basename(path))
    except _Refusal as e:
        raise BadFile(path, f"Keras 2 model: {e}") from None
    except (KeyError, TypeError, ValueError, AttributeError) as e:  # a config missing or mistyping a required key
        raise BadFile(path, f"Keras 2 model: malformed model config ({type(e).__name__}: {e})") from None
    try:
        with h5py.File(path, "r") as f:
            version = _text(f.attrs.get("keras_version", b"?"))
            backend = f.attrs.get("backend")
            spec, params, names = read_weights(path, f, spec)
    except BadFile:
        raise
    except Exception as e:  # noqa: BLE001 - a damaged dataset or group: one line
        raise BadFile(path, f"a damaged HDF5 file ({type(e).__name__}: {e})") from None
    hard = tuple(l.name for l in spec.recurrent_layers if "hard_sigmoid_keras2" in (l.activation, l.recurrent_activation))
    return Keras2Model(path, version, _text(backend) if backend is not None else None, spec, params, steps, names,
                       hard)


# What Keras 3 computes for a Keras 2 file's activation names, as reference names (where they differ)
KERAS3_NAMES = {"hard_sigmoid_keras2": "hard_sigmoid"}


def renamed(spec: StackSpec, names: dict[str, str]) -> StackSpec:
    """``spec`` with the recurrent layers' activations renamed by ``names`` (reference name -> reference name)."""
    def k(name: str) -> str:
        return names.get(name, name)
    layers = tuple(replace(l, activation=k(l.activation), recurrent_activation=k(l.recurrent_activation))
                   if isinstance(l, Recurrent) else l for l in spec.layers)
    return replace(spec, layers=layers)


def as_keras3(spec: StackSpec) -> StackSpec:
    """The same layers as Keras 3 computes them from the file's names: Keras 2's ``hard_sigmoid`` becomes Keras 3's
    ``hard_sigmoid`` (relu6(x + 3) / 6), the function Keras 3 runs for that name."""
    return renamed(spec, KERAS3_NAMES)


def hard_sigmoid_note(model: Keras2Model, keras3: bool = True) -> str | None:
    """The note a report carries when a layer uses hard_sigmoid: which definition each side computes (``keras3``:
    whether the tensorflow side is Keras 3; Keras 2 runs the file's own definition)."""
    if not model.hard_sigmoid_layers:
        return None
    if not keras3:
        return (f"the file was saved by Keras {model.keras_version}: hard_sigmoid = {KERAS2_HARD_SIGMOID} (layers "
                f"{', '.join(model.hard_sigmoid_layers)}), which the installed Keras 2, the reference and torch run; "
                f"Keras 3 would compute {KERAS3_HARD_SIGMOID} for the same name")
    return (f"the file was saved by Keras {model.keras_version}: hard_sigmoid = {KERAS2_HARD_SIGMOID}; Keras 3 "
            f"computes {KERAS3_HARD_SIGMOID} for the same name (layers {', '.join(model.hard_sigmoid_layers)}): the "
            "reference and torch run Keras 2's definition, the Keras 3 rebuild runs Keras 3's")
