"""PyTorch adapter: ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU`` (batch_first) followed by an ``nn.Linear`` head.

Native torch layers are used whenever torch has the option: tanh/relu RNNs, sigmoid/tanh LSTMs
(with proj_size), reset-after GRUs, stacked and bidirectional (torch concatenates directions
between layers, so other merge modes are native only for one layer; the top layer's directions are
merged by the model). For everything else (other activations, Keras's hard sigmoids, GRU with the
reset before the matmul, non-concat merges between stacked layers, proj_size >= hidden_size) the adapter builds ``LoopStack``:
a plain torch module with nn.LSTM's parameter names that runs the same equations with torch ops, so
torch's autograd still computes every gradient (it checks the reference's hand-written backward,
not a torch layer). ``go_backwards`` is the Keras option; here the model flips the time axis before
the layer and keeps outputs in processing order. torch has no peepholes or run-time forget_bias.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from adapters import tables
from reference.layout import check_params, initial_state_gradient_name, prefix, state_names, state_shapes
from reference.spec import Batch, SequenceSpec

FRAMEWORK = "torch"
NATIVE_ACTIVATIONS = ("tanh", "relu")
TABLES = {"simple_rnn": tables.TORCH_RNN, "lstm": tables.TORCH_LSTM, "gru": tables.TORCH_GRU}
SUFFIX = {"fw": "", "bw": "_reverse"}


def _torch() -> Any:
    import torch
    return torch


def versions() -> dict[str, str]:
    return {"torch": _torch().__version__}


def supports(spec: SequenceSpec, masked: bool = False) -> str | None:
    """None when torch can hold ``spec`` (and run it on batches with ``lengths`` when ``masked``);
    otherwise the reason it cannot."""
    if spec.use_peepholes or spec.forget_bias:
        return "torch has no peephole LSTM and no run-time forget_bias"
    if masked and not spec.zero_output_for_mask:
        return "packed sequences pad outputs with zeros (zero_output_for_mask=True only)"
    if masked and spec.go_backwards:
        return "a flipped padded batch puts the padding first, which packed sequences cannot express"
    return None


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

    class SequenceModel(nn.Module):
        def __init__(self, spec: SequenceSpec) -> None:
            super().__init__()
            self.spec = spec
            self.rnn = NativeStack(spec) if is_native(spec) else LoopStack(spec)
            self.head = nn.Linear(spec.merged_width, spec.output_size)

        def forward(self, x: Any, states: dict, mask: Any = None) -> tuple[Any, Any, dict]:
            spec = self.spec
            if spec.go_backwards:
                x = torch.flip(x, dims=(1,))
            fw, bw, finals = self.rnn(x, states, mask)
            hidden = _merge(torch, spec.merge_mode, fw, bw) if spec.bidirectional else fw
            if spec.return_sequences:
                head_in = hidden
            elif spec.bidirectional and spec.last_output == "final":
                head_in = _merge(torch, spec.merge_mode, fw[:, -1], bw[:, 0])
            else:
                head_in = hidden[:, -1]
            return self.head(head_in), hidden, finals

    SequenceModel.stacks = {"native": NativeStack, "loop": LoopStack}  # reused per layer group by torch_stack
    return SequenceModel


def _dtype(dtype: str) -> Any:
    return {"float32": _torch().float32, "float64": _torch().float64}[dtype]


def _recurrent(model: Any) -> tuple[Any, Any]:
    """The module holding the recurrent parameters (an nn.RNN/LSTM/GRU or a LoopStack) and the head."""
    torch = _torch()
    kinds = (torch.nn.RNN, torch.nn.LSTM, torch.nn.GRU)
    rnns = [m for m in model.modules() if isinstance(m, kinds) or type(m).__name__ == "LoopStack"]
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    if len(rnns) != 1 or len(linears) != 1:
        found = [type(m).__name__ for m in model.children()]
        raise ValueError(f"torch model: expected one nn.RNN/nn.LSTM/nn.GRU and one nn.Linear, found {found}")
    rnn = rnns[0]
    if isinstance(rnn, kinds) and not rnn.batch_first:
        raise ValueError("torch recurrent layer: expected batch_first=True")
    return rnn, linears[0]


def _layout(rnn: Any) -> tuple[str, int, tuple[str, ...]]:
    """(cell, number of layers, directions) of a torch recurrent module."""
    torch = _torch()
    if type(rnn).__name__ == "LoopStack":
        s = rnn.spec
        return s.cell, s.num_layers, s.directions
    cell = "lstm" if isinstance(rnn, torch.nn.LSTM) else "gru" if isinstance(rnn, torch.nn.GRU) else "simple_rnn"
    return cell, rnn.num_layers, ("fw", "bw") if rnn.bidirectional else ("fw",)


def _each_layer(rnn: Any):
    cell, layers, dirs = _layout(rnn)
    for k in range(layers):
        for d in dirs:
            yield TABLES[cell], prefix(k, d), {"layer": k, "suffix": SUFFIX[d]}


def build(spec: SequenceSpec, params: dict[str, np.ndarray], dtype: str) -> Any:
    """A torch module holding exactly ``params`` (cast to ``dtype``)."""
    reason = supports(spec)
    if reason:
        raise ValueError(f"torch cannot build {spec.name!r}: {reason}")
    check_params(spec, params)
    torch = _torch()
    model = _modules()(spec).to(_dtype(dtype))
    rnn, head = _recurrent(model)
    values: dict[str, np.ndarray] = {}
    for table, pre, fmt in _each_layer(rnn):
        values.update(tables.from_canonical(table, params, pre, fmt))
    for module, vals in ((rnn, values), (head, tables.from_canonical(tables.TORCH_LINEAR, params, "head"))):
        current = dict(module.named_parameters())
        tables.check_shapes({n: tuple(p.shape) for n, p in current.items()}, vals, f"torch {type(module).__name__}")
        with torch.no_grad():
            for name, value in vals.items():
                current[name].copy_(torch.from_numpy(value.astype(dtype)))
    return model


def extract(model: Any) -> dict[str, np.ndarray]:
    """The model's weights in the canonical layout, as float64."""
    rnn, head = _recurrent(model)
    arrays = {n: p.detach().numpy() for n, p in rnn.named_parameters()}
    params: dict[str, np.ndarray] = {}
    for table, pre, fmt in _each_layer(rnn):
        params.update(tables.to_canonical(table, arrays, pre, fmt))
    params.update(tables.to_canonical(tables.TORCH_LINEAR, {n: p.detach().numpy() for n, p in head.named_parameters()},
                                      "head"))
    return params


def _loss_and_accuracy(spec: SequenceSpec, y: Any, targets: Any) -> tuple[Any, Any]:
    torch = _torch()
    f = torch.nn.functional
    if spec.loss == "mse":
        loss = f.mse_loss(y, targets)
    elif spec.loss == "softmax_ce":
        loss = f.cross_entropy(y.reshape(-1, y.shape[-1]), targets.reshape(-1))
    else:  # the article's clipped log loss, op for op
        loss = -(torch.log(torch.clamp(torch.softmax(y, dim=-1), 1e-10, 1.0)) * targets).sum(dim=-1).mean()
    if spec.accuracy == "argmax":
        labels = targets if spec.loss == "softmax_ce" else targets.argmax(dim=-1)
        hits = y.argmax(dim=-1) == labels
    else:
        hits = (y - targets).abs() < spec.accuracy_tol
    return loss, hits.double().mean()


def _grads_to_canonical(table: tuple, grads: dict, prefix_: str, fmt: dict | None = None) -> dict[str, np.ndarray]:
    # A canonical tensor stored as a sum (bias_ih + bias_hh) has the gradient of either summand.
    first_only = tuple(tables.TensorMap(e.canonical, e.framework[:1], e.transform) for e in table)
    return tables.to_canonical(first_only, grads, prefix_, fmt)


def run(model: Any, spec: SequenceSpec, batch: Batch, dtype: str) -> dict[str, dict[str, np.ndarray]]:
    """Outputs, final states, loss, accuracy and gradients as torch computes them (a batch with
    ``lengths`` goes through a packed sequence)."""
    from reference.model import initial_states, mask_of

    masked = batch.lengths is not None
    reason = supports(spec, masked)
    if reason:
        raise ValueError(f"torch cannot run {spec.name!r}{' on masked batches' if masked else ''}: {reason}")
    torch = _torch()
    dt = _dtype(dtype)
    rnn, head = _recurrent(model)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    x = torch.tensor(batch.inputs, dtype=dt, requires_grad=True)
    states = {n: torch.tensor(v, dtype=dt, requires_grad=True) for n, v in initial_states(spec, batch).items()}
    targets = torch.tensor(batch.targets, dtype=dt if spec.loss != "softmax_ce" else torch.int64)
    mask = torch.from_numpy(mask_of(batch)) if masked else None
    y, hidden, finals = model(x, states, mask)
    loss, acc = _loss_and_accuracy(spec, y, targets)
    loss.backward()
    rnn_grads = {n: p.grad.numpy() for n, p in rnn.named_parameters()}
    gradient: dict[str, np.ndarray] = {}
    for table, pre, fmt in _each_layer(rnn):
        gradient.update(_grads_to_canonical(table, rnn_grads, pre, fmt))
    gradient.update(_grads_to_canonical(tables.TORCH_LINEAR, {n: p.grad.numpy() for n, p in head.named_parameters()},
                                        "head"))
    gradient["inputs"] = x.grad.numpy()
    for n, v in states.items():
        gradient[initial_state_gradient_name(n)] = v.grad.numpy()
    output = {"prediction": y.detach().numpy()}
    if spec.return_sequences:
        output["hidden"] = hidden.detach().numpy()
    return {"output": output, "state": {n: finals[n].detach().numpy() for n in state_shapes(spec, 1)},
            "loss": {"loss": loss.detach().numpy()}, "accuracy": {"accuracy": acc.detach().numpy()},
            "gradient": gradient}
