"""Canonical tensors a framework trains as a sum of several (torch's bias_ih + bias_hh): each summand is stepped."""
from __future__ import annotations

from typing import Any

import numpy as np

from reference import optimizers

# torch's simple RNN and LSTM hold a layer's bias as two tensors, bias_ih and bias_hh, that the cell adds. Each
# receives the whole gradient of their sum and the optimiser steps each: under plain SGD the sum moves by 2 lr g,
# twice as far as the one bias of Keras or TF1 at the same learning rate (a real difference between a torch port
# and its original, not rounding). ``copies`` maps a canonical name to the number k of summands its framework
# trains. The reference steps k summands of value p / k: every update of a summand depends on its gradient and its
# state only, or on its value linearly (torch's L2 decay on SGD and momentum, AdamW's decoupled decay), so the sum
# moves as the framework's whatever the split; global-norm clipping counts the gradient k times, as the framework's
# norm over its tensors does. The exception is refused by ``check``.
SEP = "#"  # summand j of canonical ``name`` is ``name#j``
_SPLIT_SENSITIVE = ("adagrad", "rmsprop", "rmsprop_centered", "adam")


def check(name: str, variant: str, copies: dict[str, int], **hyper: Any) -> None:
    """ValueError (one line) when the split of a summed tensor would change the training: torch's L2 weight decay
    (g + wd p) under an adaptive optimiser (adagrad, rmsprop, adam) makes a summand's update depend on its own value
    non-linearly, and the canonical layout does not hold the split."""
    summed = sorted(n for n, k in copies.items() if k > 1)
    wd = optimizers.resolve(name, variant, **hyper)["weight_decay"]
    if summed and variant == "torch" and name in _SPLIT_SENSITIVE and wd:
        raise ValueError(f"torch trains {summed[0]} as two tensors (bias_ih + bias_hh); under {name} with L2 "
                         f"weight_decay {wd:g} their split changes the update, and the canonical layout does not "
                         "hold it")


def expand(params: dict[str, np.ndarray], copies: dict[str, int]) -> dict[str, np.ndarray]:
    """Every summed tensor as its k summands, each p / k (the split does not matter where ``check`` passes)."""
    out: dict[str, np.ndarray] = {}
    for n, v in params.items():
        k = copies.get(n, 1)
        if k == 1:
            out[n] = v
        else:
            out.update({f"{n}{SEP}{j}": v / np.asarray(k, v.dtype) for j in range(k)})
    return out


def expand_grads(grads: dict[str, np.ndarray], copies: dict[str, int]) -> dict[str, np.ndarray]:
    """Each summand's gradient: the whole gradient of the sum."""
    out: dict[str, np.ndarray] = {}
    for n, g in grads.items():
        k = copies.get(n, 1)
        out.update({n: g} if k == 1 else {f"{n}{SEP}{j}": g for j in range(k)})
    return out


def collapse(expanded: dict[str, Any], copies: dict[str, int]) -> dict[str, Any]:
    """The canonical tensors (or per-tensor bounds): each summed tensor's summands added, in summand order."""
    out: dict[str, Any] = {}
    for n, v in expanded.items():
        base = n.split(SEP)[0]
        out[base] = out[base] + v if copies.get(base, 1) > 1 and base in out else v
    return out


def init(name: str, params: dict[str, np.ndarray], variant: str, copies: dict[str, int], **hyper: Any
         ) -> dict[str, Any]:
    """The optimiser state over every summand (reference/optimizers.py's ``init``)."""
    check(name, variant, copies, **hyper)
    return optimizers.init(name, expand(params, copies), variant, **hyper)


def step(name: str, params: dict[str, np.ndarray], grads: dict[str, np.ndarray], state: dict[str, Any], lr: float,
         variant: str, copies: dict[str, int], **hyper: Any) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """One optimiser step of every summand from canonical ``params``; the canonical result and the new state."""
    after, state = optimizers.step(name, expand(params, copies), expand_grads(grads, copies), state, lr, variant,
                                   **hyper)
    return collapse(after, copies), state
