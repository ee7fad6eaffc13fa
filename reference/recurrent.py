"""A recurrent layer: runs a cell over the time axis, forward and back-propagation through time.

The input projection of every step is one matrix product, ``x @ kernel + bias`` over (T*B, D);
only the recurrent part runs step by step, over the cell module's ``Steps``: arrays laid out
time-major, (T, B, .), allocated once per run, so that a step's values are contiguous slices and
the values of all steps are one (T*B, .) matrix. Backward, a step computes dL/dz_t; the gradients
of the kernel and the bias, and the LSTM's and GRU's recurrent parameters, are products over all
steps after the loop (``cell.gradients``; the simple RNN sums dU step by step, see its module). With
``go_backwards`` the steps are processed last to first and the outputs are returned in processing
order (Keras's convention).

A run's values serve one backward pass: backward writes gradients over the values it has read and
then keeps the run's internal arrays for the next run of the same shapes (``_SPARE``); calling it
again on the same cache raises.

Masking (``mask`` (B, T) of booleans, in input order): at a masked step the state is carried
unchanged and the output is zero (``zero_output``: torch packed sequences, TF1 sequence_length,
Keras zero_output_for_mask=True) or the previous step's output (Keras's default; zero before the
first unmasked step).
"""
from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

from reference import gru, lstm, simple_rnn

CELL_MODULES = {"simple_rnn": simple_rnn, "lstm": lstm, "gru": gru}


class _Spare:
    """Internal arrays of finished runs by (shape, dtype), handed to the next run of those shapes.

    Why: a new array is faulted in page by page on first touch, and at B=20 T=35 H=200 those faults
    took ~10% of an LSTM run (float64, one thread). Only arrays that never leave this module come here
    (``Steps.scratch``, the input copy), once backward is done with them; outputs, states and
    gradients are always new arrays. At most ``limit`` bytes are kept, the least recently given back
    dropped first.
    """

    def __init__(self, limit: int) -> None:
        self.limit, self.kept = limit, 0
        self.arrays: OrderedDict[tuple, list[np.ndarray]] = OrderedDict()
        self.lock = threading.Lock()

    def empty(self, shape: tuple, dtype: np.dtype) -> np.ndarray:
        """An uninitialised array: a spare one of this shape and dtype, else a new one."""
        with self.lock:
            spare = self.arrays.get((tuple(shape), np.dtype(dtype)))
            if spare:
                self.kept -= spare[-1].nbytes
                return spare.pop()
        return np.empty(shape, dtype)

    def give_back(self, arrays: tuple) -> None:
        """Keeps ``arrays`` (which nothing else may hold any more) for the next runs."""
        with self.lock:
            for a in arrays:
                if a.nbytes > self.limit:
                    continue
                while self.kept + a.nbytes > self.limit:
                    key, oldest = next(iter(self.arrays.items()))
                    if oldest:
                        self.kept -= oldest.pop(0).nbytes
                    if not oldest:
                        del self.arrays[key]
                key = (a.shape, a.dtype)
                self.arrays.setdefault(key, []).append(a)
                self.arrays.move_to_end(key)
                self.kept += a.nbytes

    def held(self) -> list[np.ndarray]:
        """Every array kept (for tests)."""
        with self.lock:
            return [a for spare in self.arrays.values() for a in spare]


_SPARE = _Spare(128 * 2**20)


def forward(cell: str, params: dict, x: np.ndarray, state0: tuple, opts: object,
            go_backwards: bool = False, mask: np.ndarray | None = None,
            zero_output: bool = True) -> tuple[np.ndarray, tuple, dict]:
    """x (B, T, D), state0 tuple of (B, .) -> (outputs (B, T, P), final state, cache).

    ``opts`` is what the cell module's ``step`` takes (``CELL_MODULES[cell].options(spec)``).
    """
    mod = CELL_MODULES[cell]
    dtype = np.result_type(x, *params.values(), *state0)
    xs = x.swapaxes(0, 1)  # (T, B, D): time-major, in processing order
    xs = xs[::-1] if go_backwards else xs
    owns_xs = not (xs.flags.c_contiguous and xs.dtype == dtype)  # contiguous: a recurrent layer's output
    if owns_xs:
        copy = _SPARE.empty(xs.shape, dtype)
        np.copyto(copy, xs)
        xs = copy
    steps, b, d = xs.shape
    kernel = params["kernel"]
    xw = _SPARE.empty((steps, b, kernel.shape[1]), dtype)
    np.matmul(xs.reshape(steps * b, d), kernel, out=xw.reshape(steps * b, -1))  # all steps in one product
    if "bias" in params:
        xw += params["bias"]
    buf = mod.Steps(params, opts, xw, state0, _SPARE.empty)
    ms = None
    if mask is None:
        for t in range(steps):
            mod.forward_step(params, buf, t, opts)
        outputs = buf.outputs
    else:
        ms = np.ascontiguousarray((mask[:, ::-1] if go_backwards else mask).T)[..., None]  # (T, B, 1)
        outputs = np.empty_like(buf.outputs)
        for t in range(steps):
            mod.forward_step(params, buf, t, opts)
            drop = ~ms[t]
            for s in buf.states:  # a masked step carries the state unchanged
                np.copyto(s[t + 1], s[t], where=drop)
            outputs[t] = buf.outputs[t]
            if zero_output or t == 0:
                np.copyto(outputs[t], 0, where=drop)
            else:
                np.copyto(outputs[t], outputs[t - 1], where=drop)
    state = tuple(s[steps].copy() for s in buf.states)
    cache = {"xs": xs, "owns_xs": owns_xs, "steps": buf, "cell": cell, "opts": opts, "go_backwards": go_backwards,
             "mask": ms, "zero_output": zero_output, "state_shapes": [s.shape for s in state]}
    return outputs.swapaxes(0, 1), state, cache  # a view: the next layer reads it back time-major without a copy


def backward(params: dict, cache: dict, d_outputs: np.ndarray | None, d_final: tuple) -> tuple[dict, np.ndarray, tuple]:
    """BPTT. d_outputs (B, T, P) in processing order, or None; d_final: dL/d(final state).

    Returns (grads per parameter name, dL/dx (B, T, D) in input order, dL/d(initial state)).
    """
    mod, opts = CELL_MODULES[cache["cell"]], cache["opts"]
    xs, ms, buf = cache["xs"], cache["mask"], cache["steps"]
    if buf is None:
        raise ValueError("this forward cache was consumed by a backward pass; run forward again")
    steps, b, d = xs.shape
    d_xw = mod.begin_backward(params, buf, opts)  # (T, B, G*H), written step by step
    d_state = d_final
    if ms is None:
        for t in reversed(range(steps)):
            d_out = d_outputs[:, t] if d_outputs is not None else None
            d_state = mod.backward_step(params, buf, t, d_out, d_state, opts)
    else:
        d_carry = None  # dL/d(output carried into later masked steps)
        for t in reversed(range(steps)):
            keep = ms[t]
            d_out = d_outputs[:, t] if d_outputs is not None else np.zeros_like(d_state[0])
            if d_carry is not None:
                d_out = d_out + d_carry
            d_prev = mod.backward_step(params, buf, t, np.where(keep, d_out, 0.0),
                                       tuple(np.where(keep, g, 0.0) for g in d_state), opts)
            d_state = tuple(p + np.where(keep, 0.0, g) for p, g in zip(d_prev, d_state))
            d_carry = None if cache["zero_output"] else np.where(keep, 0.0, d_out)
    grads = mod.gradients(params, buf, opts)
    flat = d_xw.reshape(steps * b, -1)
    grads["kernel"] = xs.reshape(steps * b, d).T @ flat
    if "bias" in params:
        grads["bias"] = flat.sum(axis=0)
    # dL/dx written over this layer's copy of x, its product taken; never over the layer below's output
    dx_tm = xs if cache["owns_xs"] else _SPARE.empty(xs.shape, xs.dtype)
    np.matmul(flat, params["kernel"].T, out=dx_tm.reshape(steps * b, d))
    dx = dx_tm.swapaxes(0, 1)  # (B, T, D), in processing order
    dx = (dx[:, ::-1] if cache["go_backwards"] else dx).copy()  # a new array, in input order
    grads = {name: grads[name].astype(value.dtype, copy=False) for name, value in params.items()}
    _SPARE.give_back(buf.scratch + (dx_tm,))
    cache["steps"] = cache["xs"] = None
    return grads, dx, d_state
