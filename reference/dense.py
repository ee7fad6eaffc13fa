"""Dense layer ``y = x @ kernel + bias`` over the last axis: kernel (in, out), bias (out,)."""
from __future__ import annotations

import numpy as np


def forward(params: dict, x: np.ndarray) -> np.ndarray:
    """x (..., in) -> (..., out)."""
    return add_bias(x @ params["kernel"], params["bias"])


def add_bias(y: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """``y + bias``, into ``y`` where that keeps its dtype (with a large vocabulary, y is a model's largest array)."""
    if np.result_type(y, bias) != y.dtype:  # a wider bias widens y, as ``x @ kernel + bias`` does
        return y + bias
    y += bias
    return y


def backward(params: dict, x: np.ndarray, dy: np.ndarray) -> tuple[dict, np.ndarray]:
    """Returns ({kernel, bias} gradients, dL/dx)."""
    n_in, n_out = params["kernel"].shape
    grads = {"kernel": x.reshape(-1, n_in).T @ dy.reshape(-1, n_out),
             "bias": dy.reshape(-1, n_out).sum(axis=0)}
    return grads, dy @ params["kernel"].T
