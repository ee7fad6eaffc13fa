"""LSTM cell: one step forward and one step backward.

Canonical gate order i, f, g, o (torch's; Keras's i, f, c, o is the same; TF1 stores i, j, f, o).
With a = ``activation`` (tanh by default) and s = ``recurrent_activation`` (sigmoid by default):

    z = x_t @ W + b + h_{t-1} @ U                      (4H: blocks z_i, z_f, z_g, z_o)
    i = s(z_i + w_i * c_{t-1})                          peephole terms only with use_peepholes
    f = s(z_f + w_f * c_{t-1} + forget_bias)            forget_bias: TF1's run-time constant
    g = a(z_g)
    c_t = f * c_{t-1} + i * g
    o = s(z_o + w_o * c_t)
    m = o * a(c_t)
    h_t = m @ P                                         only with a projection; else h_t = m

Parameters: W ``kernel`` (D, 4H), U ``recurrent_kernel`` (P, 4H), b ``bias`` (4H,), optional;
w_i, w_f, w_o ``peephole_i/f/o`` (H,); P ``projection`` (H, P). One bias: torch's bias_ih + bias_hh
only ever appear as a sum in an LSTM, so their sum is exact here.
The state is ``(h, c)``; the step output is h. The layer passes ``x_t @ W + b`` as ``xw_t``.

A layer's ``gate_activations`` (``reference.layers.Recurrent``) may give one gate another activation
than the one above (the output gate through tanh, say): used to model porting bugs
(``verify/hypotheses.py``); a ``SequenceSpec`` has none. a(c_t) keeps ``activation`` either way.
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
    """One step: returns (output h (B, P), new state (h, c), cache for ``step_backward``)."""
    a, _ = activation(spec.activation)
    s_i, s_f, a_g, s_o = (activation(gate_activation(spec, gate))[0] for gate in "ifgo")
    h_prev, c_prev = state
    n = c_prev.shape[1]
    z = xw_t + h_prev @ params["recurrent_kernel"]  # (B, 4H)
    zi, zf, zg, zo = z[:, :n], z[:, n:2 * n], z[:, 2 * n:3 * n], z[:, 3 * n:]
    if spec.use_peepholes:
        zi = zi + params["peephole_i"] * c_prev
        zf = zf + params["peephole_f"] * c_prev
    if spec.forget_bias:
        zf = zf + spec.forget_bias
    i, f, g = s_i(zi), s_f(zf), a_g(zg)
    c = f * c_prev + i * g
    if spec.use_peepholes:
        zo = zo + params["peephole_o"] * c
    o = s_o(zo)
    ac = a(c)
    m = o * ac
    h = m @ params["projection"] if spec.proj_size else m
    return h, (h, c), (h_prev, c_prev, i, f, g, o, c, ac, m)


def step_backward(params: dict, cache: tuple, d_out: np.ndarray, d_state: State, spec: SequenceSpec,
                  grads: dict) -> tuple[np.ndarray, State]:
    """Backward through one step: accumulates the recurrent parameters' gradients into ``grads``
    and returns (dL/d xw_t (B, 4H), dL/d (h_{t-1}, c_{t-1}))."""
    _, da = activation(spec.activation)
    ds_i, ds_f, da_g, ds_o = (activation(gate_activation(spec, gate))[1] for gate in "ifgo")
    h_prev, c_prev, i, f, g, o, c, ac, m = cache
    dh = d_out + d_state[0]
    if spec.proj_size:
        grads["projection"] += m.T @ dh
        dm = dh @ params["projection"].T
    else:
        dm = dh
    dzo = dm * ac * ds_o(o)
    dc = d_state[1] + dm * o * da(ac)
    if spec.use_peepholes:
        grads["peephole_o"] += np.sum(dzo * c, axis=0)
        dc = dc + dzo * params["peephole_o"]
    dzi = dc * g * ds_i(i)
    dzf = dc * c_prev * ds_f(f)
    dzg = dc * i * da_g(g)
    dc_prev = dc * f
    if spec.use_peepholes:
        grads["peephole_i"] += np.sum(dzi * c_prev, axis=0)
        grads["peephole_f"] += np.sum(dzf * c_prev, axis=0)
        dc_prev = dc_prev + dzi * params["peephole_i"] + dzf * params["peephole_f"]
    dz = np.concatenate([dzi, dzf, dzg, dzo], axis=1)
    grads["recurrent_kernel"] += h_prev.T @ dz
    return dz, (dz @ params["recurrent_kernel"].T, dc_prev)
