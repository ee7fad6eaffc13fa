"""PyTorch recurrent stacks the stack adapter (``adapters/torch_stack.py``) builds on, one per group of
consecutive recurrent layers (a ``SequenceSpec`` describing the group: its ``rnn/k/d`` states and parameters).

Native torch layers are used whenever torch has the option (``is_native``): tanh/relu RNNs, sigmoid/tanh
LSTMs (with proj_size), reset-after GRUs, stacked and bidirectional (torch concatenates directions between
layers, so other merge modes are native only for one layer). For everything else (other activations,
Keras's hard sigmoids, GRU with the reset before the matmul, non-concat merges between stacked layers,
proj_size >= hidden_size) ``LoopStack``: a plain torch module with nn.LSTM's parameter names that runs the
same equations with torch ops, so torch's autograd still computes every gradient (it checks the
reference's hand-written backward, not a torch layer). Both return the top layer's directions (merged by
the caller) and the final states. torch has no peepholes or run-time forget_bias. Also here: layout
tables, activations, merges, losses and gradient reading shared with ``torch_stack``.
"""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np

from adapters import tables
from reference.layout import prefix, state_names
from reference.spec import SequenceSpec

FRAMEWORK = "torch"
NATIVE_ACTIVATIONS = ("tanh", "relu")
TABLES = {"simple_rnn": tables.TORCH_RNN, "lstm": tables.TORCH_LSTM, "gru": tables.TORCH_GRU}
SUFFIX = {"fw": "", "bw": "_reverse"}


def _torch() -> Any:
    import torch
    return torch


def versions() -> dict[str, str]:
    return {"torch": _torch().__version__}


def is_native(spec: SequenceSpec) -> bool:
    """Whether a torch nn.RNN/nn.LSTM/nn.GRU computes ``spec``'s recurrent layers."""
    if spec.cell == "simple_rnn":
        ok = spec.activation in NATIVE_ACTIVATIONS
    elif spec.cell == "lstm":  # nn.LSTM refuses proj_size >= hidden_size
        ok = spec.activation == "tanh" and spec.recurrent_activation == "sigmoid" and spec.proj_size < spec.hidden_size
    else:
        ok = spec.activation == "tanh" and spec.recurrent_activation == "sigmoid" and spec.reset_after
    return ok and (not spec.bidirectional or spec.merge_mode == "concat" or spec.num_layers == 1)


def _act(name: str) -> Any:
    torch = _torch()
    # Not torch.nn.functional.hardsigmoid: in torch 2.13 its backward multiplies by float32(1/6) even in
    # float64 (gradient off by 3e-8 relative; tests/test_torch_nn.py pins this). The clamp is the same
    # function, relu6(x + 3) / 6, with an exact float64 gradient.
    return {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid, "linear": lambda z: z,
            "hard_sigmoid": lambda z: torch.clamp(z + 3.0, 0.0, 6.0) / 6.0,
            "hard_sigmoid_keras2": lambda z: torch.clamp(0.2 * z + 0.5, 0.0, 1.0)}[name]


def _merge(torch: Any, mode: str, fw: Any, bw: Any) -> Any:
    if mode == "concat":
        return torch.cat([fw, bw], dim=-1)
    if mode == "sum":
        return fw + bw
    if mode == "mul":
        return fw * bw
    return (fw + bw) / 2


def _modules() -> Any:
    """Module classes are defined on first use so that importing this file does not import torch."""
    torch = _torch()
    nn = torch.nn

    class LoopStack(nn.Module):
        """Stacked (bidirectional) recurrent layers with nn.LSTM's parameter names, run step by step."""

        def __init__(self, spec: SequenceSpec) -> None:
            super().__init__()
            self.spec = spec
            g = {"simple_rnn": 1, "lstm": 4, "gru": 3}[spec.cell]
            h, p = spec.hidden_size, spec.output_width
            for k in range(spec.num_layers):
                d_in = spec.input_size if k == 0 else spec.merged_width
                for d in spec.directions:
                    s = f"l{k}{SUFFIX[d]}"
                    setattr(self, f"weight_ih_{s}", nn.Parameter(torch.empty(g * h, d_in)))
                    setattr(self, f"weight_hh_{s}", nn.Parameter(torch.empty(g * h, p)))
                    if spec.use_bias:
                        setattr(self, f"bias_ih_{s}", nn.Parameter(torch.empty(g * h)))
                        if not (spec.cell == "gru" and not spec.reset_after):
                            setattr(self, f"bias_hh_{s}", nn.Parameter(torch.empty(g * h)))
                    if spec.proj_size:
                        setattr(self, f"weight_hr_{s}", nn.Parameter(torch.empty(p, h)))

        def _step(self, s: str, xw: Any, state: tuple) -> tuple:
            spec, n = self.spec, self.spec.hidden_size
            a, sg = _act(spec.activation), _act(spec.recurrent_activation)
            w_hh = getattr(self, f"weight_hh_{s}")
            b_hh = getattr(self, f"bias_hh_{s}", None)
            if spec.cell == "simple_rnn":
                z = xw + state[0] @ w_hh.T + (b_hh if b_hh is not None else 0)
                return (a(z),)
            if spec.cell == "lstm":
                z = xw + state[0] @ w_hh.T + (b_hh if b_hh is not None else 0)
                i, f, gg, o = sg(z[:, :n]), sg(z[:, n:2 * n]), a(z[:, 2 * n:3 * n]), sg(z[:, 3 * n:])
                c = f * state[1] + i * gg
                m = o * a(c)
                w_hr = getattr(self, f"weight_hr_{s}", None)
                return (m @ w_hr.T if w_hr is not None else m, c)
            h_prev = state[0]  # GRU, torch's gate order r, z, n
            if spec.reset_after:
                hu = h_prev @ w_hh.T + (b_hh if b_hh is not None else 0)
                r, z = sg(xw[:, :n] + hu[:, :n]), sg(xw[:, n:2 * n] + hu[:, n:2 * n])
                nn_ = a(xw[:, 2 * n:] + r * hu[:, 2 * n:])
            else:
                hu = h_prev @ w_hh[:2 * n].T
                r, z = sg(xw[:, :n] + hu[:, :n]), sg(xw[:, n:2 * n] + hu[:, n:2 * n])
                nn_ = a(xw[:, 2 * n:] + (r * h_prev) @ w_hh[2 * n:].T)
            return ((1 - z) * nn_ + z * h_prev,)

        def forward(self, x: Any, states: dict, mask: Any = None) -> tuple[Any, Any, dict]:
            spec = self.spec
            seq, finals, outs = x, {}, {}
            for k in range(spec.num_layers):
                outs = {}
                for d in spec.directions:
                    s = f"l{k}{SUFFIX[d]}"
                    xs = torch.flip(seq, dims=(1,)) if d == "bw" else seq
                    xw = xs @ getattr(self, f"weight_ih_{s}").T
                    b = getattr(self, f"bias_ih_{s}", None)
                    if b is not None:
                        xw = xw + b
                    names = state_names(spec, prefix(k, d))
                    state = tuple(states[n] for n in names)
                    steps = []
                    ms = None if mask is None else (torch.flip(mask, dims=(1,)) if d == "bw" else mask)
                    for t in range(x.shape[1]):
                        new = self._step(s, xw[:, t], state)
                        if ms is None:
                            state = new
                            steps.append(state[0])
                        else:  # padding: carry the state, output zeros (as packed sequences do)
                            keep = ms[:, t:t + 1]
                            state = tuple(torch.where(keep, a, b) for a, b in zip(new, state))
                            steps.append(torch.where(keep, new[0], torch.zeros_like(new[0])))
                    out = torch.stack(steps, dim=1)
                    outs[d] = torch.flip(out, dims=(1,)) if d == "bw" else out
                    finals.update(zip(names, state))
                seq = _merge(torch, spec.merge_mode, outs["fw"], outs["bw"]) if spec.bidirectional else outs["fw"]
            return outs["fw"], outs.get("bw"), finals

    class NativeStack(nn.Module):
        """torch's own nn.RNN / nn.LSTM / nn.GRU, returning the top layer's directions and final states."""

        def __init__(self, spec: SequenceSpec) -> None:
            super().__init__()
            self.spec = spec
            common = dict(num_layers=spec.num_layers, bias=spec.use_bias, batch_first=True,
                          bidirectional=spec.bidirectional)
            if spec.cell == "simple_rnn":
                self.rnn = nn.RNN(spec.input_size, spec.hidden_size, nonlinearity=spec.activation, **common)
            elif spec.cell == "lstm":
                self.rnn = nn.LSTM(spec.input_size, spec.hidden_size, proj_size=spec.proj_size, **common)
            else:
                self.rnn = nn.GRU(spec.input_size, spec.hidden_size, **common)

        def forward(self, x: Any, states: dict, mask: Any = None) -> tuple[Any, Any, dict]:
            spec = self.spec
            order = [prefix(k, d) for k in range(spec.num_layers) for d in spec.directions]
            h0 = torch.stack([states[p] for p in order])
            steps = x.shape[1]
            if mask is not None:  # a packed sequence; torch sorts by length and restores the order
                x = nn.utils.rnn.pack_padded_sequence(x, mask.sum(dim=1).cpu(), batch_first=True,
                                                      enforce_sorted=False)
            if spec.cell == "lstm":
                out, (h_n, c_n) = self.rnn(x, (h0, torch.stack([states[p + "/c"] for p in order])))
            else:
                out, h_n = self.rnn(x, h0)
            if mask is not None:
                out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=steps)
            finals = {p: h_n[i] for i, p in enumerate(order)}
            if spec.cell == "lstm":
                finals.update({p + "/c": c_n[i] for i, p in enumerate(order)})
            w = spec.output_width
            return out[..., :w], (out[..., w:] if spec.bidirectional else None), finals

    return SimpleNamespace(stacks={"native": NativeStack, "loop": LoopStack})  # per layer group: torch_stack


def _dtype(dtype: str) -> Any:
    return {"float32": _torch().float32, "float64": _torch().float64}[dtype]


def device_of(module: Any) -> Any:
    """The device a model's parameters live on (verify/device.py places them at build time); the CPU without any."""
    return next((p.device for p in module.parameters()), _torch().device("cpu"))


def to_numpy(t: Any) -> np.ndarray:
    """A tensor's values as a NumPy array, brought back from its device (on the CPU ``.cpu()`` is the tensor itself:
    nothing is copied that was not before)."""
    return t.detach().cpu().numpy()


def rng_devices(device: Any) -> list[int]:
    """The CUDA devices whose generator ``torch.random.fork_rng`` must fork for a model on ``device``, so that a
    seeded training run restores them too (none on the CPU)."""
    return [device.index if device.index is not None else _torch().cuda.current_device()] \
        if device.type == "cuda" else []


def _loss_and_accuracy(spec: SequenceSpec, y: Any, targets: Any) -> tuple[Any, Any]:
    torch = _torch()
    f = torch.nn.functional
    if spec.loss == "mse":
        loss = f.mse_loss(y, targets)
    elif spec.loss == "softmax_ce":
        loss = f.cross_entropy(y.reshape(-1, y.shape[-1]), targets.reshape(-1))
    elif spec.loss == "softmax_ce_steps":  # seeds/004: summed over the steps, averaged over the batch
        loss = f.cross_entropy(y.reshape(-1, y.shape[-1]), targets.reshape(-1), reduction="sum") / y.shape[0]
    else:  # the article's clipped log loss, op for op
        loss = -(torch.log(torch.clamp(torch.softmax(y, dim=-1), 1e-10, 1.0)) * targets).sum(dim=-1).mean()
    if spec.accuracy == "argmax":
        labels = targets if spec.loss in ("softmax_ce", "softmax_ce_steps") else targets.argmax(dim=-1)
        hits = y.argmax(dim=-1) == labels
    elif spec.accuracy == "sequence_abs_tol":  # a sequence counts when every element is within tol
        hits = ((y - targets).abs() < spec.accuracy_tol).reshape(y.shape[0], -1).all(dim=1)
    else:
        hits = (y - targets).abs() < spec.accuracy_tol
    return loss, hits.double().mean()


def _grads_to_canonical(table: tuple, grads: dict, prefix_: str, fmt: dict | None = None) -> dict[str, np.ndarray]:
    # A canonical tensor stored as a sum (bias_ih + bias_hh) has the gradient of either summand.
    first_only = tuple(tables.TensorMap(e.canonical, e.framework[:1], e.transform) for e in table)
    return tables.to_canonical(first_only, grads, prefix_, fmt)
