"""TF1 contrib AttentionCellWrapper around a BasicRNNCell: one step forward and one step backward.

State (s, a, S): the cell state s (a tuple: (h,) for BasicRNNCell, (c, h) for BasicLSTMCell), the last
attention read a (B, A) and the attention window S (B, L, A). One step with input x (B, D), exactly as
TF implemented it (G = 1 gate block for the RNN cell, 4 for the LSTM; N = 1 or 2 state parts):

    x'  = [x, a] @ W1 + c1                         W1 (D + A, D), c1 (D,)   input projection
    o, s' = cell(x', s)                            kernel (D + H, G*H), bias (G*H,)   (reference/seq2seq_cell)
    q   = flat(s') @ Wq + cq                       Wq (N*H, V), cq (V,)     query ("attn_w/attn_c" in seeds/002);
                                                   flat(s') = concat(nest.flatten(s')) = [c', h'] for the LSTM
    F   = S @ K[0, 0]                              K (1, 1, A, V)           TF's attn_w, a 1x1 conv ("attn_k")
    e_l = sum_v attn_v[v] * tanh(F + q)[l, v]      attn_v (V,)
    alpha = softmax(e) over the L slots;  a' = sum_l alpha_l S_l    (reads the OLD window)
    out = [o, a'] @ W3 + c3                        W3 (H + A, A), c3 (A,)   output projection
    S'  = concat(S[:, 1:], out)                    the oldest slot drops out, the output enters last

TF creates the variables in the order W1, c1, kernel, bias, K, attn_v, Wq, cq, W3, c3 (``NAMES``).
``xp`` is the input part of the first projection, ``x @ W1[:D] + c1``, which the caller may compute for
all steps in one product; ``step_backward`` returns its gradient dL/d xp and the caller finishes W1[:D].
"""
from __future__ import annotations

import numpy as np

from reference import seq2seq_cell
from reference.losses import softmax

NAMES = ("input_projection/kernel", "input_projection/bias", "cell/kernel", "cell/bias", "attention/attn_w",
         "attention/attn_v", "attention/query/kernel", "attention/query/bias", "output_projection/kernel",
         "output_projection/bias")

State = tuple[np.ndarray, np.ndarray, np.ndarray]


def shapes(input_size: int, hidden: int, attn_size: int, attn_vec: int, cell: str = "simple_rnn"
           ) -> dict[str, tuple[int, ...]]:
    """The ten parameters of one wrapper, in TF's creation order."""
    d, h, a, v = input_size, hidden, attn_size, attn_vec
    g, n = seq2seq_cell.n_gates(cell), len(seq2seq_cell.STATE_PARTS[cell])
    return dict(zip(NAMES, ((d + a, d), (d,), (d + h, g * h), (g * h,), (1, 1, a, v), (v,), (n * h, v), (v,),
                            (h + a, a), (a,))))


def project_inputs(p: dict, x: np.ndarray) -> np.ndarray:
    """x @ W1[:D] + c1 over the last axis (all steps at once when x is (B, T, D))."""
    return x @ p["input_projection/kernel"][:x.shape[-1]] + p["input_projection/bias"]


def step(p: dict, xp: np.ndarray, state: State, cell: str = "simple_rnn", forget_bias: float = 1.0
         ) -> tuple[np.ndarray, State, dict]:
    """One step: (out (B, A), new state, cache)."""
    s, a, window = state
    a_size = a.shape[1]
    w1 = p["input_projection/kernel"]
    x_in = xp + a @ w1[-a_size:]                                       # (B, D)
    kernel = p["cell/kernel"]
    d = kernel.shape[0] - s[-1].shape[1]
    xw = x_in @ kernel[:d] + p["cell/bias"]
    o, s_new, cell_cache = seq2seq_cell.step(cell, kernel, xw, s, forget_bias)
    s_flat = seq2seq_cell.flat(s_new)
    q = s_flat @ p["attention/query/kernel"] + p["attention/query/bias"]  # (B, V)
    k = p["attention/attn_w"][0, 0]                                    # (A, V)
    t = np.tanh(window @ k + q[:, None, :])                            # (B, L, V)
    e = t @ p["attention/attn_v"]                                      # (B, L)
    alpha = softmax(e)
    a_new = np.einsum("bl,bla->ba", alpha, window)
    cat = np.concatenate([o, a_new], axis=1)
    out = cat @ p["output_projection/kernel"] + p["output_projection/bias"]
    new_window = np.concatenate([window[:, 1:], out[:, None, :]], axis=1)
    cache = {"a": a, "x_in": x_in, "cell": cell_cache, "s_flat": s_flat, "window": window, "t": t, "alpha": alpha,
             "cat": cat, "cell_kind": cell, "parts": len(s_new)}
    return out, (s_new, a_new, new_window), cache


def zero_grads(p: dict) -> dict:
    return {name: np.zeros_like(value) for name, value in p.items()}


def step_backward(p: dict, cache: dict, d_out: np.ndarray, d_state: State, grads: dict
                  ) -> tuple[np.ndarray, State]:
    """Backward through one step; accumulates into ``grads`` (all but W1's input rows and c1).

    ``d_out``: dL/d out from outside the wrapper (the output layer); ``d_state``: dL/d (s', a', S')
    from later steps. Returns (dL/d xp, dL/d (s, a, S)).
    """
    ds_new, da_new, d_window_new = d_state
    window, alpha, t, s_flat = cache["window"], cache["alpha"], cache["t"], cache["s_flat"]
    h = s_flat.shape[1] // cache["parts"]
    # S' = concat(S[:, 1:], out)
    d_out = d_out + d_window_new[:, -1]
    d_window = np.zeros_like(window)
    d_window[:, 1:] = d_window_new[:, :-1]
    # out = [o, a'] W3 + c3
    w3 = p["output_projection/kernel"]
    grads["output_projection/kernel"] += cache["cat"].T @ d_out
    grads["output_projection/bias"] += d_out.sum(axis=0)
    d_cat = d_out @ w3.T
    d_o, d_a_new = d_cat[:, :h], d_cat[:, h:] + da_new
    # a' = sum_l alpha_l S_l
    d_alpha = np.einsum("ba,bla->bl", d_a_new, window)
    d_window += alpha[:, :, None] * d_a_new[:, None, :]
    d_e = alpha * (d_alpha - np.sum(d_alpha * alpha, axis=1, keepdims=True))
    # e = tanh(S K + q) @ v
    grads["attention/attn_v"] += np.einsum("bl,blv->v", d_e, t)
    d_z = d_e[:, :, None] * p["attention/attn_v"] * (1.0 - t * t)  # (B, L, V)
    k = p["attention/attn_w"][0, 0]
    a_size, v_size = k.shape
    grads["attention/attn_w"][0, 0] += window.reshape(-1, a_size).T @ d_z.reshape(-1, v_size)
    d_window += d_z @ k.T
    d_q = d_z.sum(axis=1)
    grads["attention/query/kernel"] += s_flat.T @ d_q
    grads["attention/query/bias"] += d_q.sum(axis=0)
    d_flat = d_q @ p["attention/query/kernel"].T
    ds_new = tuple(ds + d_flat[:, k * h:(k + 1) * h] for k, ds in enumerate(ds_new))
    kernel = p["cell/kernel"]
    d_xw, d_s = seq2seq_cell.step_backward(cache["cell_kind"], kernel, cache["cell"], d_o, ds_new, grads["cell/kernel"])
    d = kernel.shape[0] - h
    grads["cell/kernel"][:d] += cache["x_in"].T @ d_xw
    grads["cell/bias"] += d_xw.sum(axis=0)
    d_x_in = d_xw @ kernel[:d].T
    # x' = [x, a] W1 + c1: the a rows here, the x rows and c1 by the caller through d xp
    w1 = p["input_projection/kernel"]
    grads["input_projection/kernel"][-a_size:] += cache["a"].T @ d_x_in
    d_a = d_x_in @ w1[-a_size:].T
    return d_x_in, (d_s, d_a, d_window)
