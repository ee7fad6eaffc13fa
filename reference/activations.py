"""Activations and their derivatives, the derivatives written in terms of the activation's output."""
from __future__ import annotations

from typing import Callable

import numpy as np


def _sigmoid(z: np.ndarray) -> np.ndarray:
    # 1 / (1 + exp(-z)) is accurate for every z: exp(-z) overflows only where the true value is below
    # the dtype's smallest normal number (z < -709 in float64, z < -88 in float32), and the result
    # there is 0; so the overflow is expected and silenced.
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-z))


# name -> (f(z), f'(z) expressed through y = f(z))
ACTIVATIONS: dict[str, tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]]] = {
    "tanh": (np.tanh, lambda y: 1.0 - y * y),
    "sigmoid": (_sigmoid, lambda y: y * (1.0 - y)),
    "relu": (lambda z: np.maximum(z, 0.0), lambda y: (y > 0).astype(y.dtype)),
    "linear": (lambda z: z, lambda y: np.ones_like(y)),
    # Keras 3 keras.activations.hard_sigmoid (relu6(x + 3) / 6, checked in keras 3.15 source) and
    # torch.nn.Hardsigmoid: the same function, slope 1/6, saturating at |x| >= 3.
    "hard_sigmoid": (lambda z: np.clip(z + 3.0, 0.0, 6.0) / 6.0,
                     lambda y: ((y > 0) & (y < 1)).astype(y.dtype) / 6.0),
    # Keras 2 (tf.keras <= 2.15) hard_sigmoid, the old default recurrent activation: slope 0.2,
    # saturating at |x| >= 2.5.
    "hard_sigmoid_keras2": (lambda z: np.clip(0.2 * z + 0.5, 0.0, 1.0),
                            lambda y: ((y > 0) & (y < 1)).astype(y.dtype) * 0.2),
}


def activation(name: str) -> tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]]:
    """The pair (f, f' through the output) for ``name``."""
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; expected one of {', '.join(ACTIVATIONS)}") from None
