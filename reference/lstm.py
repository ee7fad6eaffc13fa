"""LSTM cell: one step forward and one step backward, over buffers that hold every step.

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
The state is ``(h, c)``; the step output is h. The layer passes ``x_t @ W + b`` of every step as
``xw`` (T, B, 4H). ``Steps`` holds the (T, B, .) arrays a run writes, ``forward_step``/``backward_step``
run step t over them, and ``gradients`` forms the recurrent parameters' gradients from every step at
once (dU = sum_t h_{t-1}^T dz_t as one product). ``step``/``step_backward`` are the same computation
for one step on its own.

A layer's ``gate_activations`` (``reference.layers.Recurrent``) may give one gate another activation
than the one above (the output gate through tanh, say): used to model porting bugs
(``verify/hypotheses.py``); a ``SequenceSpec`` has none. a(c_t) keeps ``activation`` either way.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from reference.activations import activation
from reference.layers import gate_activation
from reference.spec import SequenceSpec

State = tuple[np.ndarray, ...]


class Steps:
    """Every step's values, preallocated: ``h`` (T+1, B, P) and ``c`` (T+1, B, H) hold the states 0 .. T,
    ``gates`` (T, 4, B, H) i, f, g, o, ``ac`` (T, B, H) a(c_t), ``m`` (T, B, H) o * a(c_t) (h itself without
    a projection). Backward: ``dz`` (T, B, 4H) dL/dz_t, which is also dL/d xw_t, and with a projection
    ``dh`` (T, B, P) dL/dh_t.

    One array holds xw_t (B, 4H), then the gates, then dz_t (B, 4H): each step overwrites what it has
    read (a fresh array costs more in page faults than its arithmetic at these sizes), so a run's
    values serve one backward pass, as autograd graphs without retain_graph do. The gates are stored
    gate by gate, each (B, H) contiguous: the backward arithmetic on them runs up to 3x faster than
    on column blocks of a (B, 4H) row."""

    def __init__(self, params: dict, spec: SequenceSpec, xw: np.ndarray, state0: State,
                 empty: Callable = np.empty) -> None:
        """``empty(shape, dtype)`` makes the arrays listed in ``scratch``: those no caller ever sees."""
        steps, batch, width = xw.shape
        n = width // 4
        dtype = np.result_type(xw, *state0, *params.values())
        self.n, self.xw = n, np.ascontiguousarray(xw, dtype)
        self.a, self.da = activation(spec.activation)
        pairs = [activation(gate_activation(spec, gate)) for gate in "ifgo"]
        self.f = tuple(f for f, _ in pairs)  # s_i, s_f, a_g, s_o
        self.df = tuple(df for _, df in pairs)
        self.h = np.empty((steps + 1, batch, state0[0].shape[1]), dtype)
        self.c = empty((steps + 1, batch, n), dtype)
        self.h[0], self.c[0] = state0
        self.gates = self.xw.reshape(steps, 4, batch, n)
        self.ac = empty((steps, batch, n), dtype)
        self.m = empty((steps, batch, n), dtype) if spec.proj_size else self.h[1:]
        self.states = (self.h, self.c)
        self.outputs = self.h[1:]
        self.dz = self.dh = self.u_t = None
        self.empty = empty
        self.scratch = (self.xw, self.c, self.ac) + ((self.m,) if spec.proj_size else ())


def options(spec: SequenceSpec) -> SequenceSpec:
    return spec


def forward_step(params: dict, buf: Steps, t: int, spec: SequenceSpec) -> None:
    """Step t: writes h_t, c_t into ``buf.h[t + 1]``, ``buf.c[t + 1]`` and the step's gates, a(c_t), m."""
    a = buf.a
    s_i, s_f, a_g, s_o = buf.f
    h_prev, c_prev = buf.h[t], buf.c[t]
    n = buf.n
    z = buf.xw[t] + h_prev @ params["recurrent_kernel"]  # (B, 4H)
    zi, zf, zg, zo = z[:, :n], z[:, n:2 * n], z[:, 2 * n:3 * n], z[:, 3 * n:]
    if spec.use_peepholes:
        zi += params["peephole_i"] * c_prev
        zf += params["peephole_f"] * c_prev
    if spec.forget_bias:
        zf += spec.forget_bias
    i, f, g = s_i(zi), s_f(zf), a_g(zg)
    c = f * c_prev + i * g
    if spec.use_peepholes:
        zo += params["peephole_o"] * c
    o = s_o(zo)
    ac = a(c)
    m = o * ac
    h = m @ params["projection"] if spec.proj_size else m
    if spec.proj_size:
        buf.m[t] = m  # without a projection buf.m is buf.h[1:]
    buf.h[t + 1], buf.c[t + 1], buf.ac[t] = h, c, ac
    np.stack([i, f, g, o], out=buf.gates[t])


def begin_backward(params: dict, buf: Steps, spec: SequenceSpec) -> np.ndarray:
    """Prepares the backward pass; returns dL/d xw (T, B, 4H), which ``backward_step`` fills."""
    if buf.dz is not None:
        raise ValueError("this run's values were consumed by a backward pass (dz_t overwrites the gates); "
                         "run forward again")
    buf.dz = buf.xw  # step t writes dz_t over the gates it has read
    if spec.proj_size:
        buf.dh = buf.empty(buf.outputs.shape, buf.dz.dtype)
        buf.scratch += (buf.dh,)
    # U^T laid out contiguously: dz_t @ U^T runs about twice as fast in float32 as through the
    # transposed view (OpenBLAS, B=20, H=200)
    u = params["recurrent_kernel"]
    buf.u_t = buf.empty(u.T.shape, buf.dz.dtype)
    np.copyto(buf.u_t, u.T)
    buf.scratch += (buf.u_t,)
    return buf.dz


def backward_step(params: dict, buf: Steps, t: int, d_out: np.ndarray | None, d_state: State,
                  spec: SequenceSpec) -> State:
    """Backward through step t: ``d_out`` dL/d(output) (None: zero), ``d_state`` dL/d(h_t, c_t) from
    later steps. Writes dL/dz_t into ``buf.dz[t]`` and returns dL/d(h_{t-1}, c_{t-1})."""
    da = buf.da
    ds_i, ds_f, da_g, ds_o = buf.df
    i, f, g, o = buf.gates[t]
    c_prev, c, ac = buf.c[t], buf.c[t + 1], buf.ac[t]
    dh = d_state[0] if d_out is None else d_out + d_state[0]
    if spec.proj_size:
        buf.dh[t] = dh
        dm = dh @ params["projection"].T
    else:
        dm = dh
    dzo = dm * ac * ds_o(o)
    dc = d_state[1] + dm * o * da(ac)
    if spec.use_peepholes:
        dc += dzo * params["peephole_o"]
    dzi = dc * g * ds_i(i)
    dzf = dc * c_prev * ds_f(f)
    dzg = dc * i * da_g(g)
    dc_prev = dc * f
    if spec.use_peepholes:
        dc_prev += dzi * params["peephole_i"] + dzf * params["peephole_f"]
    dz = np.concatenate([dzi, dzf, dzg, dzo], axis=1, out=buf.dz[t])
    return dz @ buf.u_t, dc_prev


def gradients(params: dict, buf: Steps, spec: SequenceSpec) -> dict[str, np.ndarray]:
    """The recurrent parameters' gradients, each summed over every step: a product over the (T*B) rows
    for U and P, an elementwise sum for the peepholes."""
    steps, batch, width = buf.dz.shape
    n = buf.n
    dz = buf.dz.reshape(steps * batch, width)
    grads = {"recurrent_kernel": buf.h[:steps].reshape(steps * batch, -1).T @ dz}
    if spec.proj_size:
        grads["projection"] = buf.m.reshape(steps * batch, n).T @ buf.dh.reshape(steps * batch, -1)
    if spec.use_peepholes:
        c_prev, c = buf.c[:steps].reshape(-1, n), buf.c[1:].reshape(-1, n)
        grads["peephole_i"] = np.sum(dz[:, :n] * c_prev, axis=0)
        grads["peephole_f"] = np.sum(dz[:, n:2 * n] * c_prev, axis=0)
        grads["peephole_o"] = np.sum(dz[:, 3 * n:] * c, axis=0)
    return grads


def step(params: dict, xw_t: np.ndarray, state: State, spec: SequenceSpec) -> tuple[np.ndarray, State, Steps]:
    """One step: returns (output h (B, P), new state (h, c), cache for ``step_backward``)."""
    buf = Steps(params, spec, xw_t[None].copy(), state)  # a copy: the step writes its gates over it
    forward_step(params, buf, 0, spec)
    h = buf.h[1]
    return h, (h, buf.c[1]), buf


def step_backward(params: dict, cache: Steps, d_out: np.ndarray, d_state: State, spec: SequenceSpec,
                  grads: dict) -> tuple[np.ndarray, State]:
    """Backward through one step: accumulates the recurrent parameters' gradients into ``grads``
    and returns (dL/d xw_t (B, 4H), dL/d (h_{t-1}, c_{t-1}))."""
    d_xw = begin_backward(params, cache, spec)
    d_prev = backward_step(params, cache, 0, d_out, d_state, spec)
    for name, g in gradients(params, cache, spec).items():
        grads[name] += g
    return d_xw[0], d_prev
