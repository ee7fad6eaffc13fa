"""PyTorch adapter: ``nn.RNN`` (batch_first) followed by an ``nn.Linear`` head.

torch's ``nn.RNN`` offers only tanh and relu; for the other activations the adapter builds
``LoopRNN``, a plain torch module with nn.RNN's parameter names that runs the same equation with
torch ops, so torch's autograd still computes every gradient. ``go_backwards`` is the Keras option;
here the model flips the time axis before the layer and keeps outputs in processing order.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from adapters import tables
from reference.layout import RNN_PREFIX, check_params
from reference.spec import Batch, SequenceSpec

FRAMEWORK = "torch"
NATIVE_ACTIVATIONS = ("tanh", "relu")


def _torch() -> Any:
    import torch
    return torch


def versions() -> dict[str, str]:
    return {"torch": _torch().__version__}


def _modules() -> Any:
    """Module classes are defined on first use so that importing this file does not import torch."""
    torch = _torch()
    nn = torch.nn

    class LoopRNN(nn.Module):
        """h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh), with nn.RNN's parameter names."""

        def __init__(self, input_size: int, hidden_size: int, activation: str, bias: bool) -> None:
            super().__init__()
            self.activation = activation
            self.weight_ih_l0 = nn.Parameter(torch.empty(hidden_size, input_size))
            self.weight_hh_l0 = nn.Parameter(torch.empty(hidden_size, hidden_size))
            if bias:
                self.bias_ih_l0 = nn.Parameter(torch.empty(hidden_size))
                self.bias_hh_l0 = nn.Parameter(torch.empty(hidden_size))
            self.bias = bias

        def forward(self, x: Any, h0: Any) -> tuple[Any, Any]:
            act = {"sigmoid": torch.sigmoid, "linear": lambda z: z, "tanh": torch.tanh, "relu": torch.relu}[self.activation]
            xw = x @ self.weight_ih_l0.T  # (B, T, H), every step in one product
            if self.bias:
                xw = xw + self.bias_ih_l0 + self.bias_hh_l0
            h, outs = h0[0], []
            for t in range(x.shape[1]):
                h = act(xw[:, t] + h @ self.weight_hh_l0.T)
                outs.append(h)
            return torch.stack(outs, dim=1), h[None]

    class SequenceModel(nn.Module):
        def __init__(self, spec: SequenceSpec) -> None:
            super().__init__()
            if spec.activation in NATIVE_ACTIVATIONS:
                self.rnn = nn.RNN(spec.input_size, spec.hidden_size, nonlinearity=spec.activation,
                                  bias=spec.use_bias, batch_first=True)
            else:
                self.rnn = LoopRNN(spec.input_size, spec.hidden_size, spec.activation, spec.use_bias)
            self.head = nn.Linear(spec.hidden_size, spec.output_size)
            self.go_backwards = spec.go_backwards
            self.return_sequences = spec.return_sequences

        def forward(self, x: Any, h0: Any) -> tuple[Any, Any, Any]:
            if self.go_backwards:
                x = torch.flip(x, dims=(1,))
            seq, h_n = self.rnn(x, h0[None])
            y = self.head(seq if self.return_sequences else seq[:, -1])
            return y, seq, h_n[0]

    return LoopRNN, SequenceModel


def _dtype(dtype: str) -> Any:
    return {"float32": _torch().float32, "float64": _torch().float64}[dtype]


def _parts(model: Any) -> tuple[Any, Any]:
    """The model's recurrent layer and its Linear head; ValueError when it holds anything else."""
    torch = _torch()
    loop_rnn, _ = _modules()
    rnns = [m for m in model.modules() if isinstance(m, (torch.nn.RNN, loop_rnn)) or type(m).__name__ == "LoopRNN"]
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    if len(rnns) != 1 or len(linears) != 1:
        kinds = [type(m).__name__ for m in model.children()]
        raise ValueError(f"torch model: expected one nn.RNN and one nn.Linear, found {kinds}")
    rnn = rnns[0]
    if isinstance(rnn, torch.nn.RNN) and (rnn.num_layers != 1 or rnn.bidirectional or not rnn.batch_first
                                           or rnn.proj_size if hasattr(rnn, "proj_size") else False):
        raise ValueError("torch nn.RNN: expected num_layers=1, bidirectional=False, batch_first=True")
    return rnn, linears[0]


def build(spec: SequenceSpec, params: dict[str, np.ndarray], dtype: str) -> Any:
    """A torch module holding exactly ``params`` (cast to ``dtype``)."""
    check_params(spec, params)
    torch = _torch()
    _, sequence_model = _modules()
    model = sequence_model(spec).to(_dtype(dtype))
    rnn, head = _parts(model)
    for module, table, prefix in ((rnn, tables.TORCH_RNN, RNN_PREFIX), (head, tables.TORCH_LINEAR, "head")):
        values = tables.from_canonical(table, params, prefix, {"layer": 0, "suffix": ""})
        current = dict(module.named_parameters())
        tables.check_shapes({n: tuple(p.shape) for n, p in current.items()}, values, f"torch {type(module).__name__}")
        with torch.no_grad():
            for name, value in values.items():
                current[name].copy_(torch.from_numpy(value.astype(dtype)))
    return model


def extract(model: Any) -> dict[str, np.ndarray]:
    """The model's weights in the canonical layout, as float64."""
    rnn, head = _parts(model)
    fmt = {"layer": 0, "suffix": ""}
    params = tables.to_canonical(tables.TORCH_RNN, {n: p.detach().numpy() for n, p in rnn.named_parameters()},
                                 RNN_PREFIX, fmt)
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


def _grads_to_canonical(table: tuple, module: Any, prefix: str, fmt: dict | None = None) -> dict[str, np.ndarray]:
    # A canonical tensor stored as a sum (bias_ih + bias_hh) has the gradient of either summand.
    grads = {n: p.grad.numpy() for n, p in module.named_parameters()}
    first_only = tuple(tables.TensorMap(e.canonical, e.framework[:1], e.transform) for e in table)
    return tables.to_canonical(first_only, grads, prefix, fmt)


def run(model: Any, spec: SequenceSpec, batch: Batch, dtype: str) -> dict[str, dict[str, np.ndarray]]:
    """Outputs, final state, loss, accuracy and gradients as torch computes them."""
    torch = _torch()
    dt = _dtype(dtype)
    rnn, head = _parts(model)
    model.zero_grad(set_to_none=False)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    x = torch.tensor(batch.inputs, dtype=dt, requires_grad=True)
    b = batch.inputs.shape[0]
    h0_np = batch.initial_state if batch.initial_state is not None else np.zeros((b, spec.hidden_size))
    h0 = torch.tensor(h0_np, dtype=dt, requires_grad=True)
    targets = torch.tensor(batch.targets, dtype=dt if spec.loss != "softmax_ce" else torch.int64)
    y, seq, h_t = model(x, h0)
    loss, acc = _loss_and_accuracy(spec, y, targets)
    loss.backward()
    gradient = _grads_to_canonical(tables.TORCH_RNN, rnn, RNN_PREFIX, {"layer": 0, "suffix": ""})
    gradient.update(_grads_to_canonical(tables.TORCH_LINEAR, head, "head"))
    gradient["inputs"] = x.grad.numpy()
    gradient[f"{RNN_PREFIX}/initial_state"] = h0.grad.numpy()
    output = {"prediction": y.detach().numpy()}
    if spec.return_sequences:
        output["hidden"] = seq.detach().numpy()
    return {"output": output, "state": {RNN_PREFIX: h_t.detach().numpy()}, "loss": {"loss": loss.detach().numpy()},
            "accuracy": {"accuracy": acc.detach().numpy()}, "gradient": gradient}
