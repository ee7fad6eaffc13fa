"""Writes the Keras 2 test files of this folder: run with tensorflow-cpu 2.15.1 (tf.keras = Keras 2.15), not Keras 3.

    python3 -m venv .venvs/tf215 && .venvs/tf215/bin/pip install tensorflow-cpu==2.15.1
    .venvs/tf215/bin/python tests/data/keras2/make_keras2_h5.py

Per model NAME: NAME.h5 (``model.save``, legacy HDF5), NAME_x.npy (the fixed input) and NAME_y_keras215.npy (what
tf.keras 2.15 computed on it, float32), so that tests can check Keras 2's own outputs without Keras 2 installed.
Weights are drawn from a seed per model (every element different, biases non-zero), so the files are reproducible.
"""
from __future__ import annotations

import os
import sys
from typing import Any, Callable

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
HERE = os.path.dirname(os.path.abspath(__file__))
BATCH, STEPS, FEATURES = 4, 6, 3


def _float_x(rng: np.random.Generator, mask_value: float | None = None) -> np.ndarray:
    x = rng.uniform(-1.0, 1.0, size=(BATCH, STEPS, FEATURES)).astype(np.float32)
    if mask_value is not None:  # trailing padding, so that the mask changes something
        x[1, STEPS - 2:], x[2, STEPS - 1:] = mask_value, mask_value
    return x


def _ids(rng: np.random.Generator, vocab: int) -> np.ndarray:
    x = rng.integers(1, vocab, size=(BATCH, STEPS)).astype(np.int32)
    x[1, STEPS - 2:], x[2, STEPS - 1:] = 0, 0
    return x


def models(keras: Any) -> dict[str, tuple[Callable[[], Any], Callable[[np.random.Generator], np.ndarray]]]:
    """NAME -> (model factory, input maker)."""
    L = keras.layers
    seq = keras.Sequential
    return {
        "lstm_sigmoid": (lambda: seq([keras.Input((STEPS, FEATURES)), L.LSTM(4, return_sequences=True, name="lstm"),
                                      L.Dense(2, name="head")], name="lstm_sigmoid"), _float_x),
        "lstm_hard_sigmoid": (lambda: seq([keras.Input((STEPS, FEATURES)),
                                           L.LSTM(4, recurrent_activation="hard_sigmoid", return_sequences=True,
                                                  name="lstm"),
                                           L.Dense(2, name="head")], name="lstm_hard_sigmoid"), _float_x),
        # both GRU variants in one file (HDF5 spends ~2 KB per group: fewer files keep the folder small)
        "gru_stack": (lambda: seq([keras.Input((None, FEATURES)),
                                   L.GRU(4, reset_after=False, return_sequences=True, name="gru_before"),
                                   L.GRU(3, name="gru_after"),
                                   L.Dense(3, activation="softmax", name="head")], name="gru_stack"), _float_x),
        "bidirectional_lstm": (lambda: seq([keras.Input((STEPS, FEATURES)),
                                            L.Bidirectional(L.LSTM(3, return_sequences=True), name="bidirectional"),
                                            L.Dense(2, name="head")], name="bidirectional_lstm"), _float_x),
        "simple_rnn_masked": (lambda: seq([keras.Input((STEPS, FEATURES)), L.Masking(0.0, name="masking"),
                                           L.SimpleRNN(4, return_sequences=True, name="rnn"),
                                           L.Dropout(0.25, name="dropout"),
                                           L.TimeDistributed(L.Dense(2, activation="tanh"), name="td")],
                                          name="simple_rnn_masked"), lambda rng: _float_x(rng, 0.0)),
        "embedding_gru_functional": (_embedding_functional(keras), lambda rng: _ids(rng, 10)),
        # not describable (Conv1D): the reader must refuse it with one line naming the layer
        "unsupported_conv1d": (lambda: seq([keras.Input((STEPS, FEATURES)), L.Conv1D(2, 2, name="conv"),
                                            L.LSTM(2, name="lstm")], name="unsupported_conv1d"), _float_x),
    }


def _embedding_functional(keras: Any) -> Callable[[], Any]:
    def make() -> Any:
        x = keras.Input((STEPS,), dtype="int32", name="ids")
        h = keras.layers.Embedding(10, 3, mask_zero=True, name="embed")(x)
        h = keras.layers.GRU(4, recurrent_activation="hard_sigmoid", go_backwards=True, name="gru")(h)
        y = keras.layers.Dense(3, activation="softmax", name="head")(h)
        return keras.Model(x, y, name="embedding_gru_functional")
    return make


def main() -> int:
    import tensorflow as tf
    keras = tf.keras
    if not tf.__version__.startswith("2.15"):
        print(f"run with tensorflow 2.15 (tf.keras = Keras 2); this is {tf.__version__}", file=sys.stderr)
        return 2
    tf.keras.utils.set_random_seed(0)
    for k, (name, (make, inputs)) in enumerate(models(keras).items()):
        rng = np.random.default_rng(1000 + k)
        model = make()
        # every element its own value (per-gate different), biases non-zero: a gate-order bug cannot hide
        model.set_weights([rng.uniform(-0.8, 0.8, w.shape).astype(np.float32) for w in model.get_weights()])
        model.save(os.path.join(HERE, f"{name}.h5"), save_format="h5")
        if name.startswith("unsupported"):
            continue  # only its refusal is tested: no outputs needed
        x = inputs(rng)
        y = model(x, training=False).numpy()
        np.save(os.path.join(HERE, f"{name}_x.npy"), x)
        np.save(os.path.join(HERE, f"{name}_y_keras215.npy"), y)
        print(f"{name}: x {x.shape} {x.dtype} -> y {y.shape} {y.dtype}")
    import keras as keras_package  # tf.keras 2.15 is the keras 2.15 package; tf.keras itself has no __version__
    print(f"tensorflow {tf.__version__}, keras {keras_package.__version__}, numpy {np.__version__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
