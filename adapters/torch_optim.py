"""How the torch adapters train: torch.optim's optimiser and gradient clipping for reference/optimizers.py's names."""
from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """These tensors are tiny (batch x 32): intra-op threads cost more than they save, and on a 2-core
    machine they compete with TensorFlow's pool. The caller's setting is restored afterwards."""
    import torch
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


def optimizer(params: list, name: str, lr: float, hyper: dict) -> tuple[Any, Callable[[], float | None]]:
    """torch.optim's optimiser for the reference's ``name`` with every hyper-parameter the reference resolves (the
    reference's defaults are torch's own), and the gradient clipping to run before each step:
    torch.nn.utils.clip_grad_norm_ then clip_grad_value_, the order reference/optimizers.py models. The clipping
    returns the global norm clip_grad_norm_ computed (and clipped by), None without ``clip_norm``."""
    import torch

    from reference import optimizers
    h = optimizers.resolve(name, "torch", **hyper)
    wd = h["weight_decay"]
    if name == "sgd":
        opt = torch.optim.SGD(params, lr=lr, weight_decay=wd)
    elif name in ("momentum", "nesterov"):
        opt = torch.optim.SGD(params, lr=lr, momentum=h["momentum"], nesterov=name == "nesterov", weight_decay=wd)
    elif name == "adagrad":
        opt = torch.optim.Adagrad(params, lr=lr, eps=h["eps"], weight_decay=wd,
                                  initial_accumulator_value=h["initial_accumulator_value"])
    elif name in ("rmsprop", "rmsprop_centered"):
        opt = torch.optim.RMSprop(params, lr=lr, alpha=h["rho"], eps=h["eps"], centered=name == "rmsprop_centered",
                                  weight_decay=wd)
    else:
        cls = torch.optim.AdamW if name == "adamw" else torch.optim.Adam
        opt = cls(params, lr=lr, betas=(h["beta_1"], h["beta_2"]), eps=h["eps"], weight_decay=wd)

    def clip() -> float | None:
        # the norm is clip_grad_norm_'s own return value: the verifier checks the very number torch clipped by
        norm = None
        if h["clip_norm"] is not None:
            norm = float(torch.nn.utils.clip_grad_norm_(params, h["clip_norm"]))
        if h["clip_value"] is not None:
            torch.nn.utils.clip_grad_value_(params, h["clip_value"])
        return norm
    return opt, clip
