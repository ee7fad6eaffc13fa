"""A recurrent layer: runs a cell over the time axis, forward and back-propagation through time.

The input projection of every step is one matrix product, ``x @ kernel + bias`` over (B*T, D);
only the recurrent part runs step by step. With ``go_backwards`` the steps are processed last to
first and the outputs are returned in processing order (Keras's convention).

Masking (``mask`` (B, T) of booleans, in input order): at a masked step the state is carried
unchanged and the output is zero (``zero_output``: torch packed sequences, TF1 sequence_length,
Keras zero_output_for_mask=True) or the previous step's output (Keras's default; zero before the
first unmasked step).
"""
from __future__ import annotations

import numpy as np

from reference import gru, lstm, simple_rnn

CELL_MODULES = {"simple_rnn": simple_rnn, "lstm": lstm, "gru": gru}


def forward(cell: str, params: dict, x: np.ndarray, state0: tuple, opts: object,
            go_backwards: bool = False, mask: np.ndarray | None = None,
            zero_output: bool = True) -> tuple[np.ndarray, tuple, dict]:
    """x (B, T, D), state0 tuple of (B, .) -> (outputs (B, T, P), final state, cache).

    ``opts`` is what the cell module's ``step`` takes (``CELL_MODULES[cell].options(spec)``).
    """
    mod = CELL_MODULES[cell]
    xs = x[:, ::-1] if go_backwards else x
    ms = None if mask is None else (mask[:, ::-1] if go_backwards else mask)
    xw = xs @ params["kernel"]  # (B, T, G*H): all steps in one product
    if "bias" in params:
        xw = xw + params["bias"]
    state = state0
    outputs, caches = [], []
    prev_out = None
    for t in range(x.shape[1]):
        out, new_state, cache = mod.step(params, xw[:, t], state, opts)
        if ms is not None:
            keep = ms[:, t][:, None]
            new_state = tuple(np.where(keep, n, o) for n, o in zip(new_state, state))
            prev = np.zeros_like(out) if zero_output or prev_out is None else prev_out
            out = np.where(keep, out, prev)
        state, prev_out = new_state, out
        outputs.append(out)
        caches.append(cache)
    cache = {"xs": xs, "caches": caches, "cell": cell, "opts": opts, "go_backwards": go_backwards,
             "mask": ms, "zero_output": zero_output,
             "state_shapes": [s.shape for s in state]}
    return np.stack(outputs, axis=1), state, cache


def backward(params: dict, cache: dict, d_outputs: np.ndarray | None, d_final: tuple) -> tuple[dict, np.ndarray, tuple]:
    """BPTT. d_outputs (B, T, P) in processing order, or None; d_final: dL/d(final state).

    Returns (grads per parameter name, dL/dx (B, T, D) in input order, dL/d(initial state)).
    """
    mod = CELL_MODULES[cache["cell"]]
    xs, ms = cache["xs"], cache["mask"]
    grads = {name: np.zeros_like(value) for name, value in params.items()}
    d_state = d_final
    steps = len(cache["caches"])
    d_xw = np.empty(xs.shape[:2] + (params["kernel"].shape[1],), dtype=xs.dtype)  # (B, T, G*H)
    d_carry = None  # dL/d(output carried into later masked steps)
    for t in reversed(range(steps)):
        d_out = d_outputs[:, t] if d_outputs is not None else np.zeros_like(d_state[0])
        if ms is None:
            d_xw[:, t], d_state = mod.step_backward(params, cache["caches"][t], d_out, d_state, cache["opts"], grads)
            continue
        keep = ms[:, t][:, None]
        if d_carry is not None:
            d_out = d_out + d_carry
        d_x_t, d_prev = mod.step_backward(params, cache["caches"][t], np.where(keep, d_out, 0.0),
                                          tuple(np.where(keep, d, 0.0) for d in d_state), cache["opts"], grads)
        d_xw[:, t] = d_x_t
        d_state = tuple(p + np.where(keep, 0.0, d) for p, d in zip(d_prev, d_state))
        d_carry = None if cache["zero_output"] else np.where(keep, 0.0, d_out)
    b, _, d = xs.shape
    grads["kernel"] = xs.reshape(-1, d).T @ d_xw.reshape(b * steps, -1)
    if "bias" in params:
        grads["bias"] = d_xw.sum(axis=(0, 1))
    dx = d_xw @ params["kernel"].T  # (B, T, D), in processing order
    if cache["go_backwards"]:
        dx = dx[:, ::-1]
    return grads, np.ascontiguousarray(dx), d_state
