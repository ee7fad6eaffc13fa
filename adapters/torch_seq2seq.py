"""PyTorch adapter for the article's models: TF1's BasicRNNCell and AttentionCellWrapper as torch modules.

PyTorch never had an AttentionCellWrapper. ``AttentionCellWrapper`` here is an ``nn.Module`` that
wraps a cell module and computes what TF1's did (reference/attention_wrapper.py has the equations);
its submodules are registered in TF1's creation order (``linear1``, ``cell``, ``attention``
(``attn_w``, ``attn_v``, ``query``), ``linear2``), so ``named_parameters()`` lists the 22 (or 6)
tensors in the article's order. ``attn_w`` is stored (V, A), the squeezed weight of a 1x1
convolution. ``BasicRNNCell`` is an ``nn.Linear`` over concat([x, h]): one weight, one bias, as TF1.

``variant`` builds deliberately broken models for the verifier's own tests (see keras_seq2seq).
"""
from __future__ import annotations

import functools
from typing import Any, Callable

import numpy as np

from adapters import seq2seq_tables as st
from adapters.torch_nn import device_of, to_numpy
from adapters.torch_optim import one_thread as _one_thread
from adapters.torch_optim import optimizer as _optimizer  # a module global: tests slip a step through it
from reference.seq2seq import check_params
from reference.seq2seq_spec import Seq2SeqBatch, Seq2SeqSpec

FRAMEWORK = "torch"
VARIANTS = ("", "window_lag", "drop_attention_state", "whole_backward")


def _torch() -> Any:
    import torch
    return torch


def versions() -> dict[str, str]:
    return {"torch": _torch().__version__}


@functools.cache
def _classes() -> dict[str, Any]:
    torch = _torch()
    nn = torch.nn

    class BasicRNNCell(nn.Linear):
        """TF1 BasicRNNCell: h = tanh(Linear(concat([x, h])))."""

        def __init__(self, input_size: int, units: int) -> None:
            super().__init__(input_size + units, units)
            self.units = units

        def zero_state(self, batch: int, like: Any) -> tuple:
            return (like.new_zeros(batch, self.units),)

        def forward(self, x: Any, state: tuple) -> tuple[Any, tuple]:  # type: ignore[override]
            h = torch.tanh(super().forward(torch.cat([x, state[0]], dim=-1)))
            return h, (h,)

    class BasicLSTMCell(nn.Linear):
        """TF1 BasicLSTMCell: gates i, j, f, o from one Linear over concat([x, h]); state (c, h);
        ``forget_bias`` added to f at run time."""

        def __init__(self, input_size: int, units: int, forget_bias: float = 1.0) -> None:
            super().__init__(input_size + units, 4 * units)
            self.units, self.forget_bias = units, forget_bias

        def zero_state(self, batch: int, like: Any) -> tuple:
            return (like.new_zeros(batch, self.units), like.new_zeros(batch, self.units))

        def forward(self, x: Any, state: tuple) -> tuple[Any, tuple]:  # type: ignore[override]
            c, h = state
            i, j, f, o = super().forward(torch.cat([x, h], dim=-1)).chunk(4, dim=-1)
            c = c * torch.sigmoid(f + self.forget_bias) + torch.sigmoid(i) * torch.tanh(j)
            h = torch.tanh(c) * torch.sigmoid(o)
            return h, (c, h)

    class Attention(nn.Module):
        def __init__(self, query_size: int, attn_size: int, attn_vec: int) -> None:
            super().__init__()
            self.attn_w = nn.Parameter(torch.empty(attn_vec, attn_size))  # 1x1 conv weight, squeezed
            self.attn_v = nn.Parameter(torch.empty(attn_vec))
            self.query = nn.Linear(query_size, attn_vec)
            nn.init.uniform_(self.attn_w, -0.1, 0.1)
            nn.init.uniform_(self.attn_v, -0.1, 0.1)

        def forward(self, s: Any, window: Any) -> Any:
            features = window @ self.attn_w.T                                  # (B, L, V)
            e = (self.attn_v * torch.tanh(features + self.query(s)[:, None])).sum(-1)
            alpha = torch.softmax(e, dim=-1)
            return (alpha[..., None] * window).sum(1)                         # reads the old window

    class AttentionCellWrapper(nn.Module):
        def __init__(self, cell: Any, input_size: int, attn_length: int, attn_size: int, attn_vec: int,
                     variant: str = "") -> None:
            super().__init__()
            self.attn_length, self.attn_size, self.variant = attn_length, attn_size, variant
            self.linear1 = nn.Linear(input_size + attn_size, input_size)
            self.cell = cell
            parts = 2 if isinstance(cell, BasicLSTMCell) else 1  # the query reads concat(nest.flatten(state))
            self.attention = Attention(parts * cell.units, attn_size, attn_vec)
            self.linear2 = nn.Linear(cell.units + attn_size, attn_size)

        def zero_state(self, batch: int, like: Any) -> tuple:
            z = like.new_zeros
            state = (self.cell.zero_state(batch, like), z(batch, self.attn_size), z(batch, self.attn_length,
                                                                                         self.attn_size))
            return state + ((z(batch, self.attn_size),) if self.variant == "window_lag" else ())

        def forward(self, x: Any, state: tuple) -> tuple[Any, tuple]:
            s, attns, window = state[:3]
            cell_out, s = self.cell(self.linear1(torch.cat([x, attns], -1)), s)
            attns = self.attention(torch.cat(s, -1), window)
            out = self.linear2(torch.cat([cell_out, attns], -1))
            if self.variant == "window_lag":  # the bug under test: the window gets the previous output
                return out, (s, attns, torch.cat([window[:, 1:], state[3][:, None]], 1), out)
            return out, (s, attns, torch.cat([window[:, 1:], out[:, None]], 1))

    class Seq2Seq(nn.Module):
        def __init__(self, spec: Seq2SeqSpec, variant: str = "") -> None:
            super().__init__()
            self.spec, self.variant = spec, variant
            h = spec.hidden_size

            def cell(input_size: int) -> Any:
                if spec.cell == "lstm":
                    return BasicLSTMCell(input_size, h, spec.forget_bias)
                return BasicRNNCell(input_size, h)
            if spec.kind == "attention":
                self.encoder = AttentionCellWrapper(cell(spec.input_size), spec.input_size, spec.L, spec.A, spec.V,
                                                    variant)
                self.output_layer = nn.Linear(spec.A, spec.output_size)
                self.decoder = AttentionCellWrapper(cell(spec.output_size), spec.output_size, spec.L, spec.A, spec.V,
                                                    variant)
            elif spec.kind == "seq2seq":
                self.encoder = cell(spec.input_size)
                self.output_layer = nn.Linear(h, spec.output_size)
                self.decoder = cell(spec.output_size)
            else:
                self.fw = cell(spec.input_size)
                self.bw = cell(spec.input_size)
                self.output_layer = nn.Linear(2 * h, spec.output_size)

        def forward(self, x: Any, targets: Any = None, teacher: bool = False) -> dict[str, Any]:
            spec = self.spec
            b = x.shape[0]
            if spec.kind == "bidirectional":
                state, fw = self.fw.zero_state(b, x), []
                for t in range(spec.input_steps):
                    h, state = self.fw(x[:, t], state)
                    fw.append(h)
                state, bw = self.bw.zero_state(b, x), []
                for t in reversed(range(spec.input_steps)):
                    h, state = self.bw(x[:, t], state)
                    bw.append(h)
                # TF1 static_bidirectional_rnn(...)[0][-1]: backward after the last input only
                last_bw = bw[-1] if self.variant == "whole_backward" else bw[0]  # the trap: Keras's semantics
                return {"logits": self.output_layer(torch.cat([fw[-1], last_bw], -1)), "forward": torch.stack(fw, 1),
                        "backward": torch.stack(bw[::-1], 1)}
            state = self.encoder.zero_state(b, x)
            enc = []
            for t in range(spec.input_steps):
                out, state = self.encoder(x[:, t], state)
                enc.append(out)
            res = {"encoder": torch.stack(enc, 1)}
            if spec.kind == "attention":
                res.update(st.final_states("encoder", state[0], state[1:3]))
                if self.variant == "drop_attention_state":  # the bug under test
                    state = (state[0], torch.zeros_like(state[1]), torch.zeros_like(state[2])) + state[3:]
            else:
                res.update(st.final_states("encoder", state))
            logits, dec = [self.output_layer(out)], []
            for k in range(1, spec.output_steps):
                if teacher:
                    fed = targets[:, k - 1]
                else:  # one_hot of an integer argmax: no gradient flows through the fed-back symbol
                    fed = torch.nn.functional.one_hot(logits[-1].argmax(-1), spec.output_size).to(x.dtype)
                out, state = self.decoder(fed, state)
                dec.append(out)
                logits.append(self.output_layer(out))
            if spec.kind == "attention":
                res.update(st.final_states("decoder", state[0], state[1:3]))
            else:
                res.update(st.final_states("decoder", state))
            res["logits"] = torch.stack(logits, 1)
            if dec:
                res["decoder"] = torch.stack(dec, 1)
            return res

    return {"Seq2Seq": Seq2Seq, "AttentionCellWrapper": AttentionCellWrapper, "BasicRNNCell": BasicRNNCell,
            "BasicLSTMCell": BasicLSTMCell}


def _dtype(dtype: str) -> Any:
    return {"float32": _torch().float32, "float64": _torch().float64}[dtype]


def kernels(spec: Seq2SeqSpec) -> frozenset[str]:
    """The torch kernel families the model runs on a CUDA device (verify/device.py): its cells are nn.Linear over
    concat([x, h]), so cuBLAS matmuls only."""
    return frozenset({"matmul"})


def _parameters(model: Any) -> dict[str, Any]:
    """Canonical name -> (torch parameter, transform)."""
    return {e.canonical: (model.get_parameter(e.framework[0]), e.transform) for e in st.torch_table(model.spec.kind)}


def build(spec: Seq2SeqSpec, params: dict[str, np.ndarray], dtype: str, variant: str = "", device: str = "cpu"
          ) -> Any:
    """A torch module holding exactly ``params`` (cast to ``dtype``), on ``device``."""
    check_params(spec, params)
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; expected one of {VARIANTS}")
    torch = _torch()
    model = _classes()["Seq2Seq"](spec, variant).to(device=device, dtype=_dtype(dtype))
    values = st.from_canonical(st.torch_table(spec.kind), params)
    with torch.no_grad():
        for path, value in values.items():
            p = model.get_parameter(path)
            if tuple(p.shape) != value.shape:
                raise ValueError(f"torch parameter {path}: shape {tuple(p.shape)}, expected {value.shape}")
            p.copy_(torch.from_numpy(value.astype(dtype)))
    return model


def extract(model: Any) -> dict[str, np.ndarray]:
    """The model's weights in the canonical layout, as float64 copies (a float64 model's .numpy() would be its
    live storage, which the next training step overwrites)."""
    table = st.torch_table(model.spec.kind)
    return st.to_canonical(table, {e.framework[0]: model.get_parameter(e.framework[0]).detach().cpu().numpy().copy()
                                   for e in table})


def _loss_acc(logits: Any, targets: Any) -> tuple[Any, Any, Any]:
    """The article's loss and accuracy, op for op, on the softmax outputs."""
    torch = _torch()
    p = torch.softmax(logits, dim=-1)
    loss = -(torch.log(torch.clamp(p, 1e-10, 1.0)) * targets).sum(-1).mean()
    return p, loss, (p.argmax(-1) == targets.argmax(-1)).double().mean()


def forward_backward(model: Any, spec: Seq2SeqSpec, batch: Seq2SeqBatch, dtype: str) -> dict[str, Any]:
    """``run``'s torch half: inputs and targets made on the model's device, the forward pass (spec's decoding), the
    loss's backward; the model's results with the softmax, loss and accuracy, still on that device."""
    torch = _torch()
    dt, dev = _dtype(dtype), device_of(model)
    model.zero_grad(set_to_none=True)
    x = torch.tensor(batch.inputs, dtype=dt, device=dev)
    y = torch.tensor(batch.targets, dtype=dt, device=dev)
    res = model(x, y, teacher=spec.decoding == "teacher")
    p, loss, acc = _loss_acc(res["logits"], y)
    loss.backward()
    return {**res, "prediction": p, "loss": loss, "accuracy": acc}


def run(model: Any, spec: Seq2SeqSpec, batch: Seq2SeqBatch, dtype: str) -> dict[str, dict[str, np.ndarray]]:
    """Outputs, states, loss, accuracy and gradients as torch computes them (spec's decoding), on the model's
    device, brought back as NumPy arrays."""
    res = forward_backward(model, spec, batch, dtype)
    table = st.torch_table(spec.kind)
    grads = st.to_canonical(table, {e.framework[0]: to_numpy(model.get_parameter(e.framework[0]).grad)
                                    for e in table})
    output = {"prediction": to_numpy(res["prediction"]), "logits": to_numpy(res["logits"])}
    if spec.kind != "bidirectional":
        output["decoded"] = to_numpy(res["logits"].argmax(-1)).astype(np.float64)
    output.update({k: to_numpy(v) for k, v in res.items() if k in ("encoder", "decoder", "forward", "backward")})
    out = {"output": output, "state": {k[6:]: to_numpy(v) for k, v in res.items() if k.startswith("state:")},
           "loss": {"loss": to_numpy(res["loss"])}, "accuracy": {"accuracy": to_numpy(res["accuracy"])},
           "gradient": grads}
    if not out["state"]:
        del out["state"]
    return out


def train(model: Any, spec: Seq2SeqSpec, batches: list[Seq2SeqBatch], lr: float, dtype: str,
          progress: Callable[[str], None] = lambda s: None,
          after_step: Callable[[int], None] = lambda i: None, optimizer: str = "sgd",
          hyper: dict | None = None, clip_norms: list[float] | None = None) -> list[float]:
    """``optimizer`` (torch.optim.SGD by default; reference/optimizers.py names the others and their torch rules)
    on the teacher-forced loss, one step per batch; the losses. ``hyper``: its hyper-parameters by the reference's
    names (torch's defaults otherwise); ``clip_norm`` and ``clip_value`` clip the gradients before each step with
    torch.nn.utils.clip_grad_norm_ and clip_grad_value_, in that order.

    ``after_step(i)`` is called once step ``i`` has updated the model (the verifier reads the weights there).
    ``clip_norms``, when given, receives the global norm clip_grad_norm_ returned at each step (with ``clip_norm``
    only)."""
    dt = _dtype(dtype)
    params = [p for p, _ in _parameters(model).values()]
    opt, clip = _optimizer(params, optimizer, lr, hyper or {})
    losses = []
    with _one_thread():
        _train_loop(model, batches, opt, dt, losses, progress, after_step, clip, clip_norms)
    return losses


def _train_loop(model: Any, batches: list[Seq2SeqBatch], opt: Any, dt: Any, losses: list,
                progress: Callable[[str], None], after_step: Callable[[int], None],
                clip: Callable[[], float | None], clip_norms: list[float] | None = None) -> None:
    torch = _torch()
    dev = device_of(model)
    for i, b in enumerate(batches):
        y = torch.tensor(b.targets, dtype=dt, device=dev)
        opt.zero_grad(set_to_none=True)
        _, loss, _ = _loss_acc(model(torch.tensor(b.inputs, dtype=dt, device=dev), y, teacher=True)["logits"], y)
        loss.backward()
        norm = clip()
        if clip_norms is not None and norm is not None:
            clip_norms.append(norm)
        opt.step()
        losses.append(float(loss.detach()))
        after_step(i)
        if (i + 1) % max(1, len(batches) // 4) == 0 or i + 1 == len(batches):
            progress(f"torch: step {i + 1}/{len(batches)}, training loss {losses[-1]:.4f}")
