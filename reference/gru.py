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

A layer's ``gate_activations`` (``reference.layers.Recurrent``) may give one gate another activation
than the one above (the reset gate through tanh, say): used to model porting bugs
(``verify/hypotheses.py``); a ``SequenceSpec`` has none.
"""
from __future__ import annotations

import numpy as np

from reference.activations import activation
from reference.layers import gate_activation
from reference.spec import SequenceSpec

State = tuple[np.ndarray, ...]


def options(spec: SequenceSpec) -> SequenceSpec:
    return spec


def step(params: dict, xw_t: np.ndarray, state: State, spec: SequenceSpec) -> tuple[np.ndarray, State, tuple]:
    """One step: returns (output h (B, H), new state (h,), cache for ``step_backward``)."""
    s_z, s_r, a = (activation(gate_activation(spec, gate))[0] for gate in "zrh")
    (h_prev,) = state
    n = h_prev.shape[1]
    u = params["recurrent_kernel"]
    xz, xr, xh = xw_t[:, :n], xw_t[:, n:2 * n], xw_t[:, 2 * n:]
    if spec.reset_after:
        hu = h_prev @ u  # (B, 3H)
        if "recurrent_bias" in params:
            hu = hu + params["recurrent_bias"]
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
    return h, (h,), (h_prev, z, r, hh, extra)


def step_backward(params: dict, cache: tuple, d_out: np.ndarray, d_state: State, spec: SequenceSpec,
                  grads: dict) -> tuple[np.ndarray, State]:
    """Backward through one step: accumulates the recurrent parameters' gradients into ``grads``
    and returns (dL/d xw_t (B, 3H), dL/d (h_{t-1},))."""
    ds_z, ds_r, da = (activation(gate_activation(spec, gate))[1] for gate in "zrh")
    h_prev, z, r, hh, extra = cache
    n = h_prev.shape[1]
    u = params["recurrent_kernel"]
    dh = d_out + d_state[0]
    dzz = dh * (h_prev - hh) * ds_z(z)
    dah = dh * (1.0 - z) * da(hh)
    dh_prev = dh * z
    if spec.reset_after:
        hu_h = extra
        dzr = dah * hu_h * ds_r(r)
        dhu = np.concatenate([dzz, dzr, dah * r], axis=1)
        grads["recurrent_kernel"] += h_prev.T @ dhu
        if "recurrent_bias" in params:
            grads["recurrent_bias"] += dhu.sum(axis=0)
        dh_prev = dh_prev + dhu @ u.T
    else:
        rh = extra
        grads["recurrent_kernel"][:, 2 * n:] += rh.T @ dah
        drh = dah @ u[:, 2 * n:].T
        dzr = drh * h_prev * ds_r(r)
        dgates = np.concatenate([dzz, dzr], axis=1)
        grads["recurrent_kernel"][:, :2 * n] += h_prev.T @ dgates
        dh_prev = dh_prev + drh * r + dgates @ u[:, :2 * n].T
    return np.concatenate([dzz, dzr, dah], axis=1), (dh_prev,)
