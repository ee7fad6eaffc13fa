"""The article's three models (seeds/002) as pure functions: forward, hand-written backward, SGD.

Family module of ``Seq2SeqSpec``: ``param_shapes``, ``check_params``, ``evaluate``, ``time_axis``,
``gate_blocks`` and ``decision_margins``, as the verifier expects, plus ``gradients``, ``sgd_step``, ``sgd_train``
and ``optimizer_train`` (any optimiser of reference/optimizers.py).

Canonical layout (the article's ``param`` list, in TF's variable creation order):

attention (22): ``encoder/<name>`` for the ten wrapper parameters of ``attention_wrapper.NAMES``
    (input size D = input_size), then ``output/kernel`` (A, O) and ``output/bias`` (O,) (the
    article's w4/c4, created before the decoder), then ``decoder/<name>`` (input size O).
seq2seq (6): ``encoder/cell/kernel`` (D + H, H), ``encoder/cell/bias`` (H,), ``output/kernel`` (H, O),
    ``output/bias`` (O,), ``decoder/cell/kernel`` (O + H, H), ``decoder/cell/bias`` (H,).
bidirectional (6): ``fw/cell/kernel`` (D + H, H), ``fw/cell/bias``, ``bw/cell/kernel``,
    ``bw/cell/bias``, ``output/kernel`` (2H, O), ``output/bias`` (O,).

Cell kernels stay TF1's single kernel over concat([x, h]) (rows: inputs first, then the state), so
the 22 tensors correspond one to one to the article's and to the framework variables. With
``cell="lstm"`` (TF1 BasicLSTMCell) every cell kernel is (D + H, 4H) and bias (4H,) in TF1's gate
order i, j, f, o, and the attention query reads [c, h]: Wq is (2H, V).

Results (``evaluate``), the article's accuracy and loss on the softmax outputs:

    {"output":   {"prediction": softmax probabilities (B, T_out, O) ((B, O) bidirectional),
                  "logits", "decoded": argmax symbols (B, T_out) (not bidirectional),
                  "encoder": wrapper/cell outputs (B, T_in, A or H), "decoder": (B, T_out - 1, .)
                  or, bidirectional, "forward"/"backward" (B, T_in, H) in input order},
     "state":    final states: "encoder/cell" ("encoder/cell/c", "encoder/cell/h" for an LSTM),
                 "encoder/attns", "encoder/attn_states", "decoder/..."
     "loss":     {"loss"}, "accuracy": {"accuracy"},
     "gradient": every parameter}

The first output symbol comes from the encoder's last output; the decoder runs T_out - 1 steps from
the encoder's final (whole wrapper) state. Greedy decoding feeds back the one-hot of the previous
argmax (a constant: no gradient flows through it); teacher forcing feeds the previous target.
"""
from __future__ import annotations

import numpy as np

from reference import attention_wrapper as aw
from reference import dense, losses, metrics, optimizers, seq2seq_cell
from reference.checks import check_layout
from reference.seq2seq_spec import Seq2SeqBatch, Seq2SeqSpec

Results = dict[str, dict[str, np.ndarray]]


def param_shapes(spec: Seq2SeqSpec) -> dict[str, tuple[int, ...]]:
    """Canonical name -> shape, in the article's (TF's creation) order."""
    d, o, h = spec.input_size, spec.output_size, spec.hidden_size
    g = seq2seq_cell.n_gates(spec.cell) * h
    if spec.kind == "attention":
        shapes = {f"encoder/{n}": s for n, s in aw.shapes(d, h, spec.A, spec.V, spec.cell).items()}
        shapes.update({"output/kernel": (spec.A, o), "output/bias": (o,)})
        shapes.update({f"decoder/{n}": s for n, s in aw.shapes(o, h, spec.A, spec.V, spec.cell).items()})
        return shapes
    if spec.kind == "seq2seq":
        return {"encoder/cell/kernel": (d + h, g), "encoder/cell/bias": (g,), "output/kernel": (h, o),
                "output/bias": (o,), "decoder/cell/kernel": (o + h, g), "decoder/cell/bias": (g,)}
    return {"fw/cell/kernel": (d + h, g), "fw/cell/bias": (g,), "bw/cell/kernel": (d + h, g), "bw/cell/bias": (g,),
            "output/kernel": (2 * h, o), "output/bias": (o,)}


def check_params(spec: Seq2SeqSpec, params: dict) -> None:
    """ValueError naming the expected layout (count, names, shapes) when ``params`` is not in it."""
    check_layout(param_shapes(spec), params, f"{spec.name!r} ({spec.kind})")


def _sub(params: dict, prefix: str) -> dict:
    return {k[len(prefix) + 1:]: v for k, v in params.items() if k.startswith(prefix + "/")}


def _check_batch(spec: Seq2SeqSpec, batch: Seq2SeqBatch) -> None:
    x, y = batch.inputs, batch.targets
    if x.ndim != 3 or x.shape[1:] != (spec.input_steps, spec.input_size):
        raise ValueError(f"inputs: expected shape (batch, {spec.input_steps}, {spec.input_size}), got {x.shape}")
    want = (x.shape[0], spec.output_size) if spec.kind == "bidirectional" else \
        (x.shape[0], spec.output_steps, spec.output_size)
    if y.shape != want:
        raise ValueError(f"targets: expected shape {want}, got {y.shape}")


def _fed(spec: Seq2SeqSpec, batch: Seq2SeqBatch, decoding: str, k: int, logits_prev: np.ndarray) -> np.ndarray:
    """The one-hot the decoder reads at output step k >= 1 (a constant either way)."""
    eye = np.eye(spec.output_size, dtype=logits_prev.dtype)
    if decoding == "teacher":
        return batch.targets[:, k - 1]
    if batch.fed_back is not None:
        return eye[batch.fed_back[:, k - 1]]
    return eye[np.argmax(logits_prev, axis=-1)]


def _finish(spec: Seq2SeqSpec, logits: np.ndarray, batch: Seq2SeqBatch, results: Results) -> np.ndarray:
    loss, dz = losses.clipped_log_ce(logits, batch.targets)
    results["output"]["prediction"] = losses.softmax(logits)
    results["output"]["logits"] = logits
    if spec.kind != "bidirectional":
        results["output"]["decoded"] = np.argmax(logits, axis=-1).astype(logits.dtype)
    results["loss"] = {"loss": np.asarray(loss)}
    results["accuracy"] = {"accuracy": np.asarray(metrics.accuracy("argmax", logits, batch.targets,
                                                                   "clipped_log_ce", 0.0))}
    return dz


def _forward_attention(spec: Seq2SeqSpec, params: dict, batch: Seq2SeqBatch, decoding: str
                       ) -> tuple[Results, dict]:
    x = batch.inputs
    b, dt = x.shape[0], x.dtype
    pe, pd, head = _sub(params, "encoder"), _sub(params, "decoder"), _sub(params, "output")
    state = _zero_wrapper_state(spec, b, dt)
    xp = aw.project_inputs(pe, x)  # (B, T, D): every encoder step in one product
    enc_out, enc_caches = [], []
    for t in range(spec.input_steps):
        out, state, c = aw.step(pe, xp[:, t], state, spec.cell, spec.forget_bias)
        enc_out.append(out)
        enc_caches.append(c)
    results: Results = {"output": {}, "state": _wrapper_state_results(spec, "encoder", state)}
    outs, logits, fed, dec_caches = [out], [dense.forward(head, out)], [], []
    for k in range(1, spec.output_steps):
        onehot = _fed(spec, batch, decoding, k, logits[-1])
        out, state, c = aw.step(pd, aw.project_inputs(pd, onehot), state, spec.cell, spec.forget_bias)
        outs.append(out)
        logits.append(dense.forward(head, out))
        fed.append(onehot)
        dec_caches.append(c)
    results["state"].update(_wrapper_state_results(spec, "decoder", state))
    results["output"]["encoder"] = np.stack(enc_out, axis=1)
    results["output"]["decoder"] = np.stack(outs[1:], axis=1) if outs[1:] else np.zeros((b, 0, spec.A), dt)
    dz = _finish(spec, np.stack(logits, axis=1), batch, results)
    cache = {"x": x, "enc": enc_caches, "dec": dec_caches, "outs": np.stack(outs, axis=1), "fed": fed, "dz": dz}
    return results, cache


def _backward_attention(spec: Seq2SeqSpec, params: dict, cache: dict) -> dict:
    pe, pd, head = _sub(params, "encoder"), _sub(params, "decoder"), _sub(params, "output")
    head_g, d_outs = dense.backward(head, cache["outs"], cache["dz"])
    ge, gd = aw.zero_grads(pe), aw.zero_grads(pd)
    b = d_outs.shape[0]
    dt = d_outs.dtype
    d_state = _zero_wrapper_state(spec, b, dt)
    for k in reversed(range(len(cache["dec"]))):
        d_xp, d_state = aw.step_backward(pd, cache["dec"][k], d_outs[:, k + 1], d_state, gd)
        fed = cache["fed"][k]
        gd["input_projection/kernel"][:fed.shape[1]] += fed.T @ d_xp
        gd["input_projection/bias"] += d_xp.sum(axis=0)
    x = cache["x"]
    d_xp_all = np.zeros(x.shape[:2] + (x.shape[2],), dt)
    for t in reversed(range(spec.input_steps)):
        d_out = d_outs[:, 0] if t == spec.input_steps - 1 else np.zeros_like(d_outs[:, 0])
        d_xp_all[:, t], d_state = aw.step_backward(pe, cache["enc"][t], d_out, d_state, ge)
    d = x.shape[2]
    ge["input_projection/kernel"][:d] += x.reshape(-1, d).T @ d_xp_all.reshape(-1, d)  # all steps, one product
    ge["input_projection/bias"] += d_xp_all.sum(axis=(0, 1))
    grads = {f"encoder/{n}": g for n, g in ge.items()}
    grads.update({f"output/{n}": g for n, g in head_g.items()})
    grads.update({f"decoder/{n}": g for n, g in gd.items()})
    return grads


def _zero_wrapper_state(spec: Seq2SeqSpec, b: int, dt: np.dtype) -> tuple:
    return (seq2seq_cell.zero_state(spec.cell, b, spec.hidden_size, dt), np.zeros((b, spec.A), dt),
            np.zeros((b, spec.L, spec.A), dt))


def _cell_state_results(spec: Seq2SeqSpec, prefix: str, state: tuple) -> dict:
    return {f"{prefix}/cell{suffix}": part for suffix, part in zip(seq2seq_cell.STATE_PARTS[spec.cell], state)}


def _wrapper_state_results(spec: Seq2SeqSpec, prefix: str, state: tuple) -> dict:
    out = _cell_state_results(spec, prefix, state[0])
    out.update({f"{prefix}/attns": state[1], f"{prefix}/attn_states": state[2]})
    return out


def _run_cell(spec: Seq2SeqSpec, kernel: np.ndarray, bias: np.ndarray, x: np.ndarray, state: tuple
              ) -> tuple[np.ndarray, tuple, list]:
    xw = x @ kernel[:x.shape[-1]] + bias  # (B, T, G*H): every step in one product
    outs, caches = [], []
    for t in range(x.shape[1]):
        h, state, c = seq2seq_cell.step(spec.cell, kernel, xw[:, t], state, spec.forget_bias)
        outs.append(h)
        caches.append(c)
    return np.stack(outs, axis=1), state, caches


def _back_cell(spec: Seq2SeqSpec, kernel: np.ndarray, caches: list, x: np.ndarray, d_h_steps: np.ndarray,
               d_last: tuple) -> tuple[np.ndarray, np.ndarray, tuple]:
    """BPTT through ``_run_cell``: (d kernel, d bias, dL/d initial state)."""
    d_kernel = np.zeros_like(kernel)
    d_xw = np.zeros(d_h_steps.shape[:2] + (kernel.shape[1],), d_h_steps.dtype)
    carry = d_last
    for t in reversed(range(len(caches))):
        d_xw[:, t], carry = seq2seq_cell.step_backward(spec.cell, kernel, caches[t], d_h_steps[:, t], carry, d_kernel)
    d = x.shape[-1]
    d_kernel[:d] += x.reshape(-1, d).T @ d_xw.reshape(-1, d_xw.shape[-1])
    return d_kernel, d_xw.sum(axis=(0, 1)), carry


def _forward_seq2seq(spec: Seq2SeqSpec, params: dict, batch: Seq2SeqBatch, decoding: str) -> tuple[Results, dict]:
    x = batch.inputs
    b, dt = x.shape[0], x.dtype
    ke, be, kd, bd = (params[n] for n in ("encoder/cell/kernel", "encoder/cell/bias", "decoder/cell/kernel",
                                          "decoder/cell/bias"))
    head = _sub(params, "output")
    enc, state, enc_caches = _run_cell(spec, ke, be, x, seq2seq_cell.zero_state(spec.cell, b, spec.hidden_size, dt))
    h = enc[:, -1]
    results: Results = {"state": _cell_state_results(spec, "encoder", state)}
    outs, logits, fed, dec_caches = [h], [dense.forward(head, h)], [], []
    for k in range(1, spec.output_steps):
        onehot = _fed(spec, batch, decoding, k, logits[-1])
        h, state, c = seq2seq_cell.step(spec.cell, kd, onehot @ kd[:spec.output_size] + bd, state, spec.forget_bias)
        outs.append(h)
        logits.append(dense.forward(head, h))
        fed.append(onehot)
        dec_caches.append(c)
    results["output"] = {"encoder": enc, "decoder": np.stack(outs[1:], axis=1) if outs[1:] else
                         np.zeros((b, 0, spec.hidden_size), dt)}
    results["state"].update(_cell_state_results(spec, "decoder", state))
    dz = _finish(spec, np.stack(logits, axis=1), batch, results)
    return results, {"x": x, "enc": enc_caches, "dec": dec_caches, "outs": np.stack(outs, axis=1), "fed": fed,
                     "dz": dz}


def _backward_seq2seq(spec: Seq2SeqSpec, params: dict, cache: dict) -> dict:
    ke, kd = params["encoder/cell/kernel"], params["decoder/cell/kernel"]
    head_g, d_outs = dense.backward(_sub(params, "output"), cache["outs"], cache["dz"])
    b, dt = d_outs.shape[0], d_outs.dtype
    carry = seq2seq_cell.zero_state(spec.cell, b, spec.hidden_size, dt)
    g_kd, g_bd = np.zeros_like(kd), np.zeros_like(params["decoder/cell/bias"])
    for k in reversed(range(len(cache["dec"]))):
        d_xw, carry = seq2seq_cell.step_backward(spec.cell, kd, cache["dec"][k], d_outs[:, k + 1], carry, g_kd)
        g_kd[:spec.output_size] += cache["fed"][k].T @ d_xw
        g_bd += d_xw.sum(axis=0)
    d_steps = np.zeros((b, spec.input_steps, spec.hidden_size), dt)
    d_steps[:, -1] = d_outs[:, 0]
    g_ke, g_be, _ = _back_cell(spec, ke, cache["enc"], cache["x"], d_steps, carry)
    return {"encoder/cell/kernel": g_ke, "encoder/cell/bias": g_be, "output/kernel": head_g["kernel"],
            "output/bias": head_g["bias"], "decoder/cell/kernel": g_kd, "decoder/cell/bias": g_bd}


def _forward_bidirectional(spec: Seq2SeqSpec, params: dict, batch: Seq2SeqBatch) -> tuple[Results, dict]:
    x = batch.inputs
    b, dt = x.shape[0], x.dtype
    s0 = seq2seq_cell.zero_state(spec.cell, b, spec.hidden_size, dt)
    fw, _, fw_caches = _run_cell(spec, params["fw/cell/kernel"], params["fw/cell/bias"], x, s0)
    bw_rev, _, bw_caches = _run_cell(spec, params["bw/cell/kernel"], params["bw/cell/bias"], x[:, ::-1], s0)
    # TF1 static_bidirectional_rnn(...)[0][-1]: forward after all steps, backward after the last input only
    last = np.concatenate([fw[:, -1], bw_rev[:, 0]], axis=1)
    results: Results = {"output": {"forward": fw, "backward": bw_rev[:, ::-1]}}
    dz = _finish(spec, dense.forward(_sub(params, "output"), last), batch, results)
    return results, {"x": x, "fw": fw_caches, "bw": bw_caches, "last": last, "dz": dz}


def _backward_bidirectional(spec: Seq2SeqSpec, params: dict, cache: dict) -> dict:
    head_g, d_last = dense.backward(_sub(params, "output"), cache["last"], cache["dz"])
    h = spec.hidden_size
    x = cache["x"]
    b, t = x.shape[:2]
    zeros = seq2seq_cell.zero_state(spec.cell, b, h, d_last.dtype)
    d_fw = np.zeros((b, t, h), d_last.dtype)
    d_fw[:, -1] = d_last[:, :h]
    d_bw = np.zeros((b, t, h), d_last.dtype)
    d_bw[:, 0] = d_last[:, h:]
    g_kf, g_bf, _ = _back_cell(spec, params["fw/cell/kernel"], cache["fw"], x, d_fw, zeros)
    g_kb, g_bb, _ = _back_cell(spec, params["bw/cell/kernel"], cache["bw"], x[:, ::-1], d_bw, zeros)
    return {"fw/cell/kernel": g_kf, "fw/cell/bias": g_bf, "bw/cell/kernel": g_kb, "bw/cell/bias": g_bb,
            "output/kernel": head_g["kernel"], "output/bias": head_g["bias"]}


def forward(spec: Seq2SeqSpec, params: dict, batch: Seq2SeqBatch, decoding: str | None = None
            ) -> tuple[Results, dict]:
    """Results and the cache for ``backward``; ``decoding`` defaults to the spec's."""
    check_params(spec, params)
    _check_batch(spec, batch)
    decoding = decoding or spec.decoding
    if spec.kind == "attention":
        return _forward_attention(spec, params, batch, decoding)
    if spec.kind == "seq2seq":
        return _forward_seq2seq(spec, params, batch, decoding)
    return _forward_bidirectional(spec, params, batch)


def backward(spec: Seq2SeqSpec, params: dict, cache: dict) -> dict[str, np.ndarray]:
    """Gradient of the loss with respect to every parameter (canonical names)."""
    fn = {"attention": _backward_attention, "seq2seq": _backward_seq2seq,
          "bidirectional": _backward_bidirectional}[spec.kind]
    return fn(spec, params, cache)


def evaluate(spec: Seq2SeqSpec, params: dict, batch: Seq2SeqBatch, decoding: str | None = None) -> Results:
    """Forward and backward: the full nested results."""
    results, cache = forward(spec, params, batch, decoding)
    results["gradient"] = backward(spec, params, cache)
    return results


def loss_only(spec: Seq2SeqSpec, params: dict, batch: Seq2SeqBatch, decoding: str | None = None) -> float:
    return float(forward(spec, params, batch, decoding)[0]["loss"]["loss"])


def gradients(spec: Seq2SeqSpec, params: dict, batch: Seq2SeqBatch) -> tuple[float, dict[str, np.ndarray]]:
    """The teacher-forced loss (the training objective) and its gradients, in the params' dtype."""
    results, cache = forward(spec, params, batch, "teacher")
    return results["loss"]["loss"], backward(spec, params, cache)


def sgd_step(spec: Seq2SeqSpec, params: dict, batch: Seq2SeqBatch, lr: float
             ) -> tuple[dict[str, np.ndarray], float, dict[str, np.ndarray]]:
    """One plain SGD step (p - lr * g) on the teacher-forced loss, in the params' dtype.

    Returns the updated parameters, the loss before the update and the gradients.
    """
    lr_ = np.asarray(lr, dtype=next(iter(params.values())).dtype)
    loss, grads = gradients(spec, params, batch)
    return {n: v - lr_ * grads[n] if n in grads else v for n, v in params.items()}, loss, grads


def sgd_train(spec: Seq2SeqSpec, params: dict, batches: list[Seq2SeqBatch], lr: float
              ) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Plain SGD (p -= lr * g) on the teacher-forced loss, one step per batch, in the params' dtype.

    Returns the trained parameters and the loss of every step (before its update).
    """
    p = dict(params)
    step_losses = []
    for batch in batches:
        p, loss, _ = sgd_step(spec, p, batch, lr)
        step_losses.append(loss)
    return p, np.asarray(step_losses)


def optimizer_train(spec: Seq2SeqSpec, params: dict, batches: list[Seq2SeqBatch], lr: float, optimizer: str = "sgd",
                    variant: str = "torch", hyper: dict | None = None) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """``optimizer`` in ``variant`` (reference/optimizers.py) on the teacher-forced loss, one step per batch, in the
    params' dtype; the trained parameters and the loss of every step (before its update)."""
    p = dict(params)
    state = optimizers.init(optimizer, p, variant, **(hyper or {}))
    step_losses = []
    for batch in batches:
        loss, grads = gradients(spec, p, batch)
        p, state = optimizers.step(optimizer, p, grads, state, lr, variant, **(hyper or {}))
        step_losses.append(loss)
    return p, np.asarray(step_losses)


def time_axis(spec: Seq2SeqSpec, quantity: str, name: str) -> int | None:
    """Step axis of a result tensor (decoder outputs: step k is output symbol k + 1)."""
    if quantity != "output":
        return None
    if spec.kind == "bidirectional":
        return 1 if name in ("forward", "backward") else None
    return 1


def gate_blocks(spec: Seq2SeqSpec, name: str) -> tuple[str, ...]:
    """TF1's i, j, f, o blocks along the last axis of an LSTM cell's kernel and bias."""
    return seq2seq_cell.GATES[spec.cell] if name.endswith(("cell/kernel", "cell/bias")) else ()


def decision_margins(spec: Seq2SeqSpec, results: Results, batch: Seq2SeqBatch) -> np.ndarray:
    """Top-1 minus top-2 probability of every argmax decision (accuracy and greedy feedback alike)."""
    return metrics.decision_margins("argmax", results["output"]["prediction"], batch.targets, 0.0)
