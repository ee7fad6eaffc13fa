"""Where Keras 3 and Keras 2 (tf.keras up to TF 2.15) differ for the Keras adapters, chosen by the installed version."""
from __future__ import annotations

# The stack adapter (adapters/keras_stack.py), its helpers (adapters/keras3.py) and the article models' adapter
# (adapters/keras_seq2seq.py) are written once; where the two Keras generations differ they ask this module.
# Measured under tensorflow-cpu 2.15.1 (Keras 2.15.0) and 2.21.0 (Keras 3.15.1):
#
# * variable names: Keras 3 ``kernel``; Keras 2 ``rnn_0/forward_rnn_0/lstm_cell/kernel:0`` (the last part, without
#   ``:0``, is Keras 3's name);
# * ``hard_sigmoid``: Keras 3 relu6(x + 3) / 6, Keras 2 clip(0.2 x + 0.5, 0, 1). Each generation gets the
#   reference's other definition as a registered function (a Bidirectional re-creates its backward layer from the
#   config, which cannot hold a lambda);
# * Keras 2 has no ``keras.ops``, ``keras.tree``, ``keras.KerasTensor`` nor ``keras.src.backend.get_keras_mask``: its
#   masks ride on a tensor's ``_keras_mask`` attribute, and a functional model's node keeps ``call_args``;
# * Keras 2's loss objects take no ``dtype``: they compute in the predictions' dtype (Keras 3's in float32 unless
#   told), so a float64 loss stays float64 under both.

import functools
from types import SimpleNamespace
from typing import Any

from adapters.tf_import import import_tf

class _RunCache:
    """``run``'s traced functions, by (spec, dtype), kept on the model itself (``run_cache``): the functions hold
    the model's layers, so a module-level weak dictionary would keep the model alive through its own values; on
    the model they form a cycle that dies with it. Not a dict or list, which Keras's saving would walk."""

    __slots__ = ("entries",)

    def __init__(self) -> None:
        self.entries: dict[tuple, Any] = {}


_RUN_CACHE = "_rnn_verify_run_cache"


def run_cache(model: Any, create: bool = True) -> dict[tuple, Any]:
    """The adapters' traced runs kept with ``model``, by (spec, dtype); with ``create`` False, an empty dict (not
    kept) for a model that has none yet."""
    cache = vars(model).get(_RUN_CACHE)
    if cache is None:
        if not create:
            return {}
        cache = _RunCache()
        object.__setattr__(model, _RUN_CACHE, cache)  # past Keras's attribute tracking: not a layer or weight
    return cache.entries


@functools.cache
def major() -> int:
    """The installed Keras's major version (2 or 3)."""
    _, keras = import_tf()
    return int(keras.__version__.split(".")[0])


@functools.cache
def _registered() -> tuple[str, Any]:
    """(the reference's name, the registered function) for the hard_sigmoid this Keras lacks under its own name."""
    tf, keras = import_tf()
    if major() >= 3:
        @keras.saving.register_keras_serializable(package="rnn_verify")
        def hard_sigmoid_keras2(z: Any) -> Any:
            return keras.ops.clip(0.2 * z + 0.5, 0.0, 1.0)
        return "hard_sigmoid_keras2", hard_sigmoid_keras2

    @keras.saving.register_keras_serializable(package="rnn_verify")
    def hard_sigmoid_keras3(z: Any) -> Any:
        # the ops of Keras 3's TensorFlow backend (keras/src/backend/tensorflow/nn.py), so that both generations
        # run the same kernels for the reference's "hard_sigmoid"
        return tf.nn.relu6(z + tf.constant(3.0, z.dtype)) / tf.constant(6.0, z.dtype)
    return "hard_sigmoid", hard_sigmoid_keras3


def activation(name: str) -> Any:
    """What to pass Keras for the reference's activation ``name``: Keras's own name, or a registered function where
    this Keras means something else by that name (Keras 2's hard_sigmoid under Keras 3 and the other way round)."""
    ours, fn = _registered()
    if name == ours:
        return fn
    if major() < 3 and name == "hard_sigmoid_keras2":
        return "hard_sigmoid"  # Keras 2's own
    return name


def activation_name(fn: Any, allowed: tuple[str, ...]) -> str | None:
    """The reference's name for a Keras activation function (None when it is none of ``allowed``)."""
    _, keras = import_tf()
    ours, registered = _registered()
    if fn is registered:
        return ours
    for name in allowed:
        if fn is keras.activations.get(name):
            return "hard_sigmoid_keras2" if major() < 3 and name == "hard_sigmoid" else name
    return None


def custom_objects() -> dict[str, Any]:
    """The registered activation by its saved name (``rnn_verify>...``), for loading a model built here."""
    ours, fn = _registered()
    return {f"rnn_verify>{fn.__name__}": fn}


def variable_name(variable: Any) -> str:
    """A layer variable's own name as Keras 3 gives it (``kernel``), also for Keras 2's scoped ``.../kernel:0``."""
    return variable.name.rsplit("/", 1)[-1].split(":")[0]


def get_mask(t: Any) -> Any:
    if major() >= 3:
        from keras.src.backend import get_keras_mask  # no public API reads a tensor's mask
        return get_keras_mask(t)
    return getattr(t, "_keras_mask", None)


def set_mask(t: Any, mask: Any) -> None:
    if major() >= 3:
        from keras.src.backend import set_keras_mask  # no public API attaches a mask to a tensor
        set_keras_mask(t, mask)
    else:
        t._keras_mask = mask  # Keras 2 reads masks from this attribute


@functools.cache
def ops() -> Any:
    """``keras.ops`` (Keras 3), or, for Keras 2, which has none, the TensorFlow ops that Keras 3's TensorFlow backend
    runs for the names the stack and seq2seq adapters use."""
    tf, keras = import_tf()
    if major() >= 3:
        return keras.ops
    return SimpleNamespace(
        mean=tf.reduce_mean, sum=lambda x, axis=None: tf.reduce_sum(x, axis=axis), log=tf.math.log, abs=tf.abs,
        take_along_axis=lambda a, i, axis: tf.experimental.numpy.take_along_axis(a, i, axis=axis),
        expand_dims=tf.expand_dims, softmax=lambda x, axis=-1: tf.nn.softmax(x, axis=axis), clip=tf.clip_by_value,
        argmax=lambda x, axis=-1: tf.argmax(x, axis=axis), equal=tf.equal, less=tf.less, cast=tf.cast,
        matmul=tf.matmul, tanh=tf.nn.tanh, sigmoid=tf.nn.sigmoid, zeros=lambda shape, dtype="float32": tf.zeros(
            shape, dtype), zeros_like=tf.zeros_like, concatenate=lambda xs, axis=0: tf.concat(list(xs), axis),
        split=lambda x, n, axis=0: tf.split(x, n, axis=axis), stack=lambda xs, axis=0: tf.stack(list(xs), axis),
        # as Keras 3's backend: the static sizes, a tensor where one is unknown (a function traced with
        # reduce_retracing sees batches of any size)
        shape=lambda x: tuple(tf.shape(x)[i] if d is None else d for i, d in enumerate(x.shape)),
        one_hot=lambda i, n, dtype="float32": tf.one_hot(i, n, dtype=dtype))


def dtype_name(dtype: Any) -> str:
    """A tensor's dtype as a string ("float32"): ``keras.backend.standardize_dtype`` where Keras 3 has it."""
    _, keras = import_tf()
    return keras.backend.standardize_dtype(dtype) if major() >= 3 else dtype.name


def node_arguments(layer: Any, index: int) -> tuple[list[Any], dict[str, Any]]:
    """(positional arguments, keyword arguments) of a functional model's call of ``layer`` (its node ``index``)."""
    node = layer._inbound_nodes[index]
    if major() >= 3:
        return list(node.arguments.args), dict(node.arguments.kwargs)
    return list(node.call_args), dict(node.call_kwargs)


def flatten(value: Any) -> list[Any]:
    tf, keras = import_tf()
    return list(keras.tree.flatten(value) if major() >= 3 else tf.nest.flatten(value))


def is_keras_tensor(value: Any) -> bool:
    """A symbolic tensor of a functional model."""
    _, keras = import_tf()
    if major() >= 3:
        return isinstance(value, keras.KerasTensor)
    from keras.src.engine.keras_tensor import KerasTensor  # Keras 2 exports no KerasTensor
    return isinstance(value, KerasTensor)
