"""Simple RNN cell: one step forward and one step backward.

Equation (Keras SimpleRNN, torch nn.RNN with one bias, TF1 BasicRNNCell):

    h_t = act(x_t @ W + h_{t-1} @ U + b)

Parameters: W ``kernel`` (D, H), U ``recurrent_kernel`` (H, H), b ``bias`` (H,), optional.
No gates. The state is the tuple ``(h,)`` and the step output is ``h``.

The input projection ``x_t @ W + b`` of all steps is computed by the layer in one product
(``reference.recurrent``); the cell receives it as ``xw_t``.
"""
from __future__ import annotations

import numpy as np

from reference.activations import activation

State = tuple[np.ndarray, ...]


def options(spec) -> str:
    """What ``step`` needs from the spec: the activation's name."""
    return spec.activation


def step(params: dict, xw_t: np.ndarray, state: State, act: str) -> tuple[np.ndarray, State, tuple]:
    """One step: returns (output (B, H), new state, cache for ``step_backward``)."""
    f, _ = activation(act)
    (h_prev,) = state
    h = f(xw_t + h_prev @ params["recurrent_kernel"])  # (B, H)
    return h, (h,), (h_prev, h)


def step_backward(params: dict, cache: tuple, d_out: np.ndarray, d_state: State, act: str,
                  grads: dict) -> tuple[np.ndarray, State]:
    """Backward through one step.

    ``d_out`` is dL/d(output), ``d_state`` dL/d(new state) from later steps. Accumulates
    dL/d(recurrent_kernel) into ``grads`` and returns (dL/d xw_t, dL/d previous state).
    """
    _, df = activation(act)
    h_prev, h = cache
    dz = (d_out + d_state[0]) * df(h)  # (B, H)
    grads["recurrent_kernel"] += h_prev.T @ dz
    return dz, (dz @ params["recurrent_kernel"].T,)


def initial_state(batch: int, hidden: int, dtype: np.dtype) -> State:
    """The zero state."""
    return (np.zeros((batch, hidden), dtype=dtype),)
