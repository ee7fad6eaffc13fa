"""TF1 BasicRNNCell as the article uses it: one kernel over concat([x, h]), built on ``simple_rnn.step``.

    h_t = tanh(concat([x_t, h_{t-1}]) @ kernel + bias) = tanh(x_t @ kernel[:D] + bias + h_{t-1} @ kernel[D:])

Parameters: ``kernel`` (D + H, H), ``bias`` (H,). State ``h`` (B, H); the output is the new state.
The caller projects the inputs (``x @ kernel[:D] + bias``; over all steps at once where they are
known in advance) and hands the projection ``xw`` to ``step``; ``step_backward`` returns dL/d xw and
accumulates the recurrent rows of the kernel gradient.
"""
from __future__ import annotations

import numpy as np

from reference import simple_rnn


def split(kernel: np.ndarray, hidden: int) -> tuple[np.ndarray, np.ndarray]:
    """(input rows (D, H), recurrent rows (H, H)) of a concat kernel."""
    return kernel[:-hidden], kernel[-hidden:]


def step(kernel: np.ndarray, xw: np.ndarray, h_prev: np.ndarray) -> tuple[np.ndarray, tuple]:
    """New h (B, H) from the input projection ``xw`` (B, H) and the previous h."""
    _, u = split(kernel, h_prev.shape[1])
    h, _, cache = simple_rnn.step({"recurrent_kernel": u}, xw, (h_prev,), "tanh")
    return h, cache


def step_backward(kernel: np.ndarray, cache: tuple, d_h: np.ndarray, d_kernel: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """dL/d h (everything that reaches the new h) -> (dL/d xw, dL/d h_prev); adds into d_kernel[D:]."""
    hidden = d_h.shape[1]
    _, u = split(kernel, hidden)
    grads = {"recurrent_kernel": np.zeros_like(u)}
    dxw, (dh_prev,) = simple_rnn.step_backward({"recurrent_kernel": u}, cache, d_h, (np.zeros_like(d_h),), "tanh",
                                               grads)
    d_kernel[-hidden:] += grads["recurrent_kernel"]
    return dxw, dh_prev
