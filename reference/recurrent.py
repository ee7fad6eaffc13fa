"""A recurrent layer: runs a cell over the time axis, forward and back-propagation through time.

The input projection of every step is one matrix product, ``x @ kernel + bias`` over (B*T, D);
only the recurrent part runs step by step. With ``go_backwards`` the steps are processed last to
first and the outputs are returned in processing order (Keras's convention).
"""
from __future__ import annotations

import numpy as np

from reference import simple_rnn

CELL_MODULES = {"simple_rnn": simple_rnn}


def forward(cell: str, params: dict, x: np.ndarray, state0: tuple, act: str,
            go_backwards: bool = False) -> tuple[np.ndarray, tuple, dict]:
    """x (B, T, D), state0 tuple of (B, H) -> (outputs (B, T, H), final state, cache)."""
    mod = CELL_MODULES[cell]
    xs = x[:, ::-1] if go_backwards else x
    xw = xs @ params["kernel"]  # (B, T, G*H): all steps in one product
    if "bias" in params:
        xw = xw + params["bias"]
    state = state0
    outputs, caches = [], []
    for t in range(x.shape[1]):
        out, state, cache = mod.step(params, xw[:, t], state, act)
        outputs.append(out)
        caches.append(cache)
    cache = {"xs": xs, "caches": caches, "cell": cell, "act": act, "go_backwards": go_backwards}
    return np.stack(outputs, axis=1), state, cache


def backward(params: dict, cache: dict, d_outputs: np.ndarray | None, d_final: tuple) -> tuple[dict, np.ndarray, tuple]:
    """BPTT. d_outputs (B, T, H) or None, d_final: dL/d(final state).

    Returns (grads per parameter name, dL/dx (B, T, D), dL/d(initial state)).
    """
    mod = CELL_MODULES[cache["cell"]]
    xs = cache["xs"]
    grads = {name: np.zeros_like(value) for name, value in params.items()}
    d_state = d_final
    steps = len(cache["caches"])
    d_xw = np.empty(xs.shape[:2] + (params["kernel"].shape[1],), dtype=xs.dtype)  # (B, T, G*H)
    for t in reversed(range(steps)):
        d_out = d_outputs[:, t] if d_outputs is not None else np.zeros_like(d_state[0])
        d_xw[:, t], d_state = mod.step_backward(params, cache["caches"][t], d_out, d_state, cache["act"], grads)
    b, _, d = xs.shape
    grads["kernel"] = xs.reshape(-1, d).T @ d_xw.reshape(b * steps, -1)
    if "bias" in params:
        grads["bias"] = d_xw.sum(axis=(0, 1))
    dx = d_xw @ params["kernel"].T  # (B, T, D), in processing order
    if cache["go_backwards"]:
        dx = dx[:, ::-1]
    return grads, np.ascontiguousarray(dx), d_state
