"""GRU cell: one step forward and one step backward, with the reset gate after or before the matmul.

Canonical gate order z, r, h (Keras's; torch stores r, z, n; TF1 GRUCell r, u with u = z).
With a = ``activation`` (tanh), s = ``recurrent_activation`` (sigmoid), x-projection
``xw = x_t @ W + b`` split into blocks xz, xr, xh, and U split into Uz, Ur, Uh:

reset_after=True (torch nn.GRU, Keras default), with the recurrent bias c (blocks cz, cr, ch):

    z = s(xz + h_{t-1} @ Uz + cz)
    r = s(xr + h_{t-1} @ Ur + cr)
    hh = a(xh + r * (h_{t-1} @ Uh + ch))      the recurrent bias sits inside the reset product
    h_t = z * h_{t-1} + (1 - z) * hh

reset_after=False (Keras reset_after=False, TF1 GRUCell): no recurrent bias, and

    hh = a(xh + (r * h_{t-1}) @ Uh)

Parameters: W ``kernel`` (D, 3H), U ``recurrent_kernel`` (H, 3H), b ``bias`` (3H,),
c ``recurrent_bias`` (3H,) with reset_after and use_bias. The state is ``(h,)``.

The layer passes ``x_t @ W + b`` of every step as ``xw`` (T, B, 3H). ``Steps`` holds the (T, B, .)
arrays a run writes, ``forward_step``/``backward_step`` run step t over them, and ``gradients`` forms
the recurrent parameters' gradients from every step at once (one product over the T*B rows per
block of U). ``step``/``step_backward`` are the same computation for one step on its own.

A layer's ``gate_activations`` (``reference.layers.Recurrent``) may give one gate another activation
than the one above (the reset gate through tanh, say): used to model porting bugs
(``verify/hypotheses.py``); a ``SequenceSpec`` has none.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from reference.activations import activation
from reference.layers import gate_activation
from reference.spec import SequenceSpec

State = tuple[np.ndarray, ...]


class Steps:
    """Every step's values, preallocated: ``h`` (T+1, B, H) holds h_0 .. h_T, ``gates`` (T, 3, B, H) z, r, hh
    (gate by gate, each (B, H) contiguous, for the backward arithmetic),
    ``extra`` (T, B, H) hu_h = h_{t-1} @ Uh + ch (reset_after) or r * h_{t-1}. Backward: ``dxw`` (T, B, 3H)
    dL/d xw_t; with reset_after ``extra`` then holds dL/d hu_h.

    One array holds xw_t (B, 3H), then the gates, then dL/d xw_t, and hu_h gives way to its gradient:
    each step overwrites what it has read (a fresh array costs more in page faults than its arithmetic
    at these sizes), so a run's values serve one backward pass, as autograd graphs without
    retain_graph do."""

    def __init__(self, params: dict, spec: SequenceSpec, xw: np.ndarray, state0: State,
                 empty: Callable = np.empty) -> None:
        """``empty(shape, dtype)`` makes the arrays listed in ``scratch``: those no caller ever sees."""
        steps, batch, width = xw.shape
        dtype = np.result_type(xw, *state0, *params.values())
        self.n, self.xw = width // 3, np.ascontiguousarray(xw, dtype)
        pairs = [activation(gate_activation(spec, gate)) for gate in "zrh"]
        self.f = tuple(f for f, _ in pairs)  # s_z, s_r, a
        self.df = tuple(df for _, df in pairs)
        self.h = np.empty((steps + 1, batch, width // 3), dtype)
        self.h[0] = state0[0]
        self.gates = self.xw.reshape(steps, 3, batch, width // 3)
        self.extra = empty((steps, batch, width // 3), dtype)
        self.states = (self.h,)
        self.outputs = self.h[1:]
        self.dxw = self.u_t = None
        self.empty = empty
        self.scratch = (self.xw, self.extra)


def options(spec: SequenceSpec) -> SequenceSpec:
    return spec


def forward_step(params: dict, buf: Steps, t: int, spec: SequenceSpec) -> None:
    """Step t: writes h_t into ``buf.h[t + 1]`` and the step's z, r, hh and extra."""
    s_z, s_r, a = buf.f
    h_prev = buf.h[t]
    n = buf.n
    u = params["recurrent_kernel"]
    xw_t = buf.xw[t]
    xz, xr, xh = xw_t[:, :n], xw_t[:, n:2 * n], xw_t[:, 2 * n:]
    if spec.reset_after:
        hu = h_prev @ u  # (B, 3H)
        if "recurrent_bias" in params:
            hu += params["recurrent_bias"]
        z, r = s_z(xz + hu[:, :n]), s_r(xr + hu[:, n:2 * n])
        hu_h = hu[:, 2 * n:]
        hh = a(xh + r * hu_h)
        extra = hu_h
    else:
        hu = h_prev @ u[:, :2 * n]
        z, r = s_z(xz + hu[:, :n]), s_r(xr + hu[:, n:])
        rh = r * h_prev
        hh = a(xh + rh @ u[:, 2 * n:])
        extra = rh
    h = z * h_prev + (1.0 - z) * hh
    buf.h[t + 1], buf.extra[t] = h, extra
    np.stack([z, r, hh], out=buf.gates[t])


def begin_backward(params: dict, buf: Steps, spec: SequenceSpec) -> np.ndarray:
    """Prepares the backward pass; returns dL/d xw (T, B, 3H), which ``backward_step`` fills."""
    if buf.dxw is not None:
        raise ValueError("this run's values were consumed by a backward pass (dL/d xw_t overwrites the gates); "
                         "run forward again")
    buf.dxw = buf.xw  # step t writes dL/d xw_t over the gates it has read
    # U^T laid out contiguously: the per-step products with U^T run faster than through the
    # transposed view (OpenBLAS, B=20, H=200)
    u = params["recurrent_kernel"]
    buf.u_t = buf.empty(u.T.shape, buf.dxw.dtype)
    np.copyto(buf.u_t, u.T)
    buf.scratch += (buf.u_t,)
    return buf.dxw


def backward_step(params: dict, buf: Steps, t: int, d_out: np.ndarray | None, d_state: State,
                  spec: SequenceSpec) -> State:
    """Backward through step t: ``d_out`` dL/d(output) (None: zero), ``d_state`` dL/d(h_t,) from later
    steps. Writes dL/d xw_t into ``buf.dxw[t]`` (and dL/d hu_h into ``buf.extra[t]``, reset_after);
    returns dL/d(h_{t-1},)."""
    ds_z, ds_r, da = buf.df
    n = buf.n
    z, r, hh = buf.gates[t]
    h_prev, u_t = buf.h[t], buf.u_t
    dh = d_state[0] if d_out is None else d_out + d_state[0]
    dzz = dh * (h_prev - hh) * ds_z(z)
    dah = dh * (1.0 - z) * da(hh)
    dh_prev = dh * z
    if spec.reset_after:
        hu_h = buf.extra[t]
        dzr = dah * hu_h * ds_r(r)
        dhu_h = np.multiply(dah, r, out=hu_h)  # dL/d hu_h, over hu_h (read above), where ``gradients`` reads it
        dh_prev += np.concatenate([dzz, dzr, dhu_h], axis=1) @ u_t  # dL/d(h_{t-1} @ U + c) @ U^T
    else:
        drh = dah @ u_t[2 * n:]  # dL/d(r * h_{t-1})
        dzr = drh * h_prev * ds_r(r)
        dh_prev += drh * r
        dh_prev += np.concatenate([dzz, dzr], axis=1) @ u_t[:2 * n]  # through [Uz, Ur]
    np.concatenate([dzz, dzr, dah], axis=1, out=buf.dxw[t])  # over the step's gates, all read by now
    return (dh_prev,)


def gradients(params: dict, buf: Steps, spec: SequenceSpec) -> dict[str, np.ndarray]:
    """The recurrent parameters' gradients, each summed over every step as one product over the T*B rows
    per block: Uz, Ur from h_{t-1} and dL/d xw_t's z, r blocks; Uh from h_{t-1} and dL/d hu_h
    (reset_after), or from r * h_{t-1} and dL/d xw_t's h block."""
    steps, batch, width = buf.dxw.shape
    n = buf.n
    rows = steps * batch
    h_prev = buf.h[:steps].reshape(rows, n)
    dxw = buf.dxw.reshape(rows, width)
    extra = buf.extra.reshape(rows, n)
    du = np.empty((n, width), dxw.dtype)
    np.matmul(h_prev.T, dxw[:, :2 * n], out=du[:, :2 * n])
    if spec.reset_after:
        np.matmul(h_prev.T, extra, out=du[:, 2 * n:])
        grads = {"recurrent_kernel": du}
        if "recurrent_bias" in params:
            grads["recurrent_bias"] = np.concatenate([dxw[:, :2 * n].sum(axis=0), extra.sum(axis=0)])
        return grads
    np.matmul(extra.T, dxw[:, 2 * n:], out=du[:, 2 * n:])
    return {"recurrent_kernel": du}


def step(params: dict, xw_t: np.ndarray, state: State, spec: SequenceSpec) -> tuple[np.ndarray, State, Steps]:
    """One step: returns (output h (B, H), new state (h,), cache for ``step_backward``)."""
    buf = Steps(params, spec, xw_t[None].copy(), state)  # a copy: the step writes its gates over it
    forward_step(params, buf, 0, spec)
    h = buf.h[1]
    return h, (h,), buf


def step_backward(params: dict, cache: Steps, d_out: np.ndarray, d_state: State, spec: SequenceSpec,
                  grads: dict) -> tuple[np.ndarray, State]:
    """Backward through one step: accumulates the recurrent parameters' gradients into ``grads``
    and returns (dL/d xw_t (B, 3H), dL/d (h_{t-1},))."""
    d_xw = begin_backward(params, cache, spec)
    d_prev = backward_step(params, cache, 0, d_out, d_state, spec)
    for name, g in gradients(params, cache, spec).items():
        grads[name] += g
    return d_xw[0], d_prev
