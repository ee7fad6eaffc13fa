"""Keras (TensorFlow backend) helpers the stack adapter (``adapters/keras_stack.py``) builds on: the
import, versions, activations, and reading/writing one Keras layer's variables through a layout table.

Keras 3 and Keras 2 (tf.keras 2.15) differ in variable names and in what ``hard_sigmoid`` means
(``adapters/keras_compat.py``): under Keras 3 ``hard_sigmoid_keras2`` (Keras 2's definition) is passed as a
registered callable, under Keras 2 the reference's ``hard_sigmoid`` (Keras 3's relu6(x + 3) / 6) is.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from adapters import keras_compat, tables
from adapters.tf_import import import_tf

FRAMEWORK = "tensorflow"


def _import() -> tuple[Any, Any]:
    return import_tf()


def versions() -> dict[str, str]:
    tf, keras = _import()
    return {"tensorflow": tf.__version__, "keras": keras.__version__}


def _activation(name: str) -> Any:
    """Keras's name for an activation, or a registered function where the installed Keras means something else
    by the reference's name (Bidirectional re-creates its layers from their config, which cannot hold a lambda)."""
    return keras_compat.activation(name)


def _table(layer: Any) -> tuple:
    """The layout table of one Keras recurrent layer (not a Bidirectional wrapper)."""
    _, keras = _import()
    if isinstance(layer, keras.layers.GRU):
        return tables.KERAS_GRU_AFTER if layer.cell.reset_after else tables.KERAS_GRU_BEFORE
    if isinstance(layer, keras.layers.LSTM):
        return tables.KERAS_LSTM
    return tables.KERAS_SIMPLE_RNN


def _by_name(layer: Any) -> dict[str, Any]:
    return {keras_compat.variable_name(v): v for v in layer.weights}


def _assign(layer: Any, table: tuple, params: dict, pre: str, dtype: str) -> None:
    values = tables.join_rows(tables.from_canonical(table, params, pre))
    variables = _by_name(layer)
    tables.check_shapes({n: tuple(v.shape) for n, v in variables.items()}, values, f"Keras layer {layer.name}")
    for name, value in values.items():
        variables[name].assign(value.astype(dtype))


def _to_canonical(table: tuple, arrays: dict[str, np.ndarray], pre: str) -> dict[str, np.ndarray]:
    return tables.to_canonical(table, tables.split_rows(arrays), pre)
