"""TF1's BasicRNNCell and BasicLSTMCell as the article's book uses them: one kernel over concat([x, h]).

BasicRNNCell (``simple_rnn``), built on ``simple_rnn.step``; state ``(h,)``:

    h_t = tanh(concat([x_t, h_{t-1}]) @ kernel + bias)        kernel (D + H, H), bias (H,)

BasicLSTMCell (``lstm``), TF1's gate order i, j, f, o along the columns; state ``(c, h)`` in TF1's
LSTMStateTuple order; ``forget_bias`` (TF1's default 1.0) is added at run time and is not stored:

    z = concat([x_t, h_{t-1}]) @ kernel + bias                kernel (D + H, 4H), bias (4H,)
    c_t = c_{t-1} * sigmoid(z_f + forget_bias) + sigmoid(z_i) * tanh(z_j)
    h_t = tanh(c_t) * sigmoid(z_o)

The output of a step is h_t. The caller projects the inputs (``x @ kernel[:D] + bias``; over all
steps at once where they are known in advance) and hands the projection ``xw`` to ``step``;
``step_backward`` returns dL/d xw and accumulates the recurrent rows kernel[D:] of the gradient.
"""
from __future__ import annotations

import numpy as np

from reference import simple_rnn
from reference.activations import activation

State = tuple[np.ndarray, ...]
GATES = {"simple_rnn": (), "lstm": ("i", "j", "f", "o")}
STATE_PARTS = {"simple_rnn": ("",), "lstm": ("/c", "/h")}  # suffixes of the state's reported names


def n_gates(cell: str) -> int:
    return max(1, len(GATES[cell]))


def zero_state(cell: str, batch: int, hidden: int, dtype: np.dtype) -> State:
    return tuple(np.zeros((batch, hidden), dtype) for _ in STATE_PARTS[cell])


def flat(state: State) -> np.ndarray:
    """concat(nest.flatten(state)): what AttentionCellWrapper's query reads ([c, h] for an LSTM)."""
    return state[0] if len(state) == 1 else np.concatenate(state, axis=1)


def step(cell: str, kernel: np.ndarray, xw: np.ndarray, state: State, forget_bias: float = 1.0
         ) -> tuple[np.ndarray, State, tuple]:
    """(output h (B, H), new state, cache) from the input projection ``xw`` (B, G*H)."""
    hidden = state[-1].shape[1]
    u = kernel[-hidden:]
    if cell == "simple_rnn":
        h, new, cache = simple_rnn.step({"recurrent_kernel": u}, xw, state, "tanh")
        return h, new, cache
    sig, _ = activation("sigmoid")
    c_prev, h_prev = state
    z = xw + h_prev @ u
    i, j, f, o = (z[:, k * hidden:(k + 1) * hidden] for k in range(4))
    i, g, f, o = sig(i), np.tanh(j), sig(f + forget_bias), sig(o)
    c = c_prev * f + i * g
    tc = np.tanh(c)
    h = tc * o
    return h, (c, h), (c_prev, h_prev, i, g, f, o, tc)


def step_backward(cell: str, kernel: np.ndarray, cache: tuple, d_out: np.ndarray, d_state: State,
                  d_kernel: np.ndarray) -> tuple[np.ndarray, State]:
    """dL/d output and dL/d new state -> (dL/d xw, dL/d previous state); adds into d_kernel[D:]."""
    hidden = d_out.shape[1]
    u = kernel[-hidden:]
    if cell == "simple_rnn":
        grads = {"recurrent_kernel": np.zeros_like(u)}
        d_xw, d_prev = simple_rnn.step_backward({"recurrent_kernel": u}, cache, d_out, d_state, "tanh", grads)
        d_kernel[-hidden:] += grads["recurrent_kernel"]
        return d_xw, d_prev
    c_prev, h_prev, i, g, f, o, tc = cache
    dc_next, dh_next = d_state
    dh = d_out + dh_next
    dc = dc_next + dh * o * (1.0 - tc * tc)
    dz = np.concatenate([dc * g * i * (1.0 - i), dc * i * (1.0 - g * g), dc * c_prev * f * (1.0 - f),
                         dh * tc * o * (1.0 - o)], axis=1)
    d_kernel[-hidden:] += h_prev.T @ dz
    return dz, (dc * f, dz @ u.T)
