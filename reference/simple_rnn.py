"""Simple RNN cell: one step forward and one step backward.

Equation (Keras SimpleRNN, torch nn.RNN with one bias, TF1 BasicRNNCell):

    h_t = act(x_t @ W + h_{t-1} @ U + b)

Parameters: W ``kernel`` (D, H), U ``recurrent_kernel`` (H, H), b ``bias`` (H,), optional.
No gates. The state is the tuple ``(h,)`` and the step output is ``h``.

The input projection ``x_t @ W + b`` of all steps is computed by the layer in one product
(``reference.recurrent``); the cell receives it as ``xw_t``. A layer run keeps every step in the
(T, B, .) arrays of ``Steps`` and runs ``step``/``step_backward`` through ``forward_step``/
``backward_step``: ``step_backward`` is the one-step API ``seq2seq_cell`` builds on and where the
gradient checks' tests inject a broken backward (tests/test_reference_gradients.py, test_engine.py),
so the layer goes through it, dU accumulated step by step (unlike the LSTM and GRU, whose layers
form dU from all steps in one product).
"""
from __future__ import annotations

from typing import Callable

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


class Steps:
    """A layer run's values, preallocated: ``h`` (T+1, B, H) holds h_0 .. h_T. Backward: ``dz`` (T, B, H)
    dL/dz_t (also dL/d xw_t), written over ``xw`` (read by then: a fresh array costs more in page
    faults than its arithmetic at these sizes), and ``grads`` the dU accumulator."""

    def __init__(self, params: dict, act: str, xw: np.ndarray, state0: State, empty: Callable = np.empty) -> None:
        """``empty(shape, dtype)`` makes the arrays listed in ``scratch``: those no caller ever sees."""
        steps, batch, hidden = xw.shape
        dtype = np.result_type(xw, *state0, *params.values())
        self.xw = np.ascontiguousarray(xw, dtype)
        self.h = np.empty((steps + 1, batch, hidden), dtype)
        self.h[0] = state0[0]
        self.states = (self.h,)
        self.outputs = self.h[1:]
        self.dz = self.grads = self.params = None
        self.empty = empty
        self.scratch = (self.xw,)


def forward_step(params: dict, buf: Steps, t: int, act: str) -> None:
    """Step t of a layer run: writes h_t into ``buf.h[t + 1]``."""
    h, _, _ = step(params, buf.xw[t], (buf.h[t],), act)
    buf.h[t + 1] = h


def begin_backward(params: dict, buf: Steps, act: str) -> np.ndarray:
    """Prepares the backward pass; returns dL/d xw (T, B, H), which ``backward_step`` fills."""
    if buf.dz is not None:
        raise ValueError("this run's values were consumed by a backward pass (dz_t overwrites xw_t); "
                         "run forward again")
    buf.dz = buf.xw
    buf.grads = {"recurrent_kernel": np.zeros_like(params["recurrent_kernel"], buf.h.dtype)}
    # U column-major (the same values): step_backward's dz @ U^T then reads U^T row by row, about
    # twice as fast in float32 as through the transposed view of a row-major U (OpenBLAS, B=20, H=200)
    u = params["recurrent_kernel"]
    u_t = buf.empty(u.T.shape, u.dtype)
    np.copyto(u_t, u.T)
    buf.params = {**params, "recurrent_kernel": u_t.T}
    buf.scratch += (u_t,)
    return buf.dz


def backward_step(params: dict, buf: Steps, t: int, d_out: np.ndarray | None, d_state: State, act: str) -> State:
    """Backward through step t of a layer run (``d_out`` None: zero): dL/dz_t into ``buf.dz[t]``;
    returns dL/d(h_{t-1},)."""
    d_out = np.zeros_like(d_state[0]) if d_out is None else d_out
    buf.dz[t], d_prev = step_backward(buf.params, (buf.h[t], buf.h[t + 1]), d_out, d_state, act, buf.grads)
    return d_prev


def gradients(params: dict, buf: Steps, act: str) -> dict[str, np.ndarray]:
    """dL/dU, summed over the steps by ``step_backward``."""
    return buf.grads
