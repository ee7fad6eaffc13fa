"""Two sides' weights compared tensor by tensor, and, where they differ, the classic porting bug that explains it.

The weights come from two files (a Keras model and its torch port, say), each read into the canonical
layout by its adapter. A correct port holds the same numbers up to one rounding of the stored dtype
(torch's two biases are summed; a port that split a bias over both rounds once). When a tensor
differs, each hypothesis below is tried on the canonical arrays; the first that reproduces the
other side's tensor within the same allowance is the diagnosis:

* a square kernel stored without its transpose;
* the gate blocks of a gate-stacked tensor in another order (every permutation is tried);
* a bias in both of torch's biases (so it counts twice), or in neither;
* an LSTM forget-gate bias moved by a constant (TF1's run-time forget_bias not folded in, or twice);
* the two directions of a bidirectional layer swapped;
* embedding rows shifted by a few ids (an off-by-one padding index).
"""
from __future__ import annotations

import itertools
from dataclasses import replace
from typing import Callable

import numpy as np

from adapters.tables import permute_blocks
from verify.compare import compare_tensor
from verify.report import Allowance, Check

RULE = ("weights of two files: equal up to one rounding of the stored dtype (atol 1 ulp of the tensor's largest "
        "|value|, rtol 1 ulp); torch's two biases count as their sum")

Namer = Callable[[str], tuple[str, str]]  # canonical name -> (this side's tensor, the other side's tensor)


def allowance(ref: np.ndarray, stored: str) -> Allowance:
    eps = float(np.finfo(stored).eps)
    scale = float(np.max(np.abs(ref))) if ref.size and np.max(np.abs(ref)) > 0 else 1.0
    return Allowance(eps * scale, eps, f"{stored} weights: 1 ulp of the tensor's scale {scale:.3g}", RULE)


def _close(a: np.ndarray, b: np.ndarray, allow: Allowance) -> bool:
    return a.shape == b.shape and bool(np.all(np.abs(a - b) <= allow.atol + allow.rtol * np.abs(b)))


def _gate_permutation(got: np.ndarray, want: np.ndarray, gates: tuple[str, ...], allow: Allowance) -> str | None:
    if len(gates) < 2 or got.shape[-1] % len(gates):
        return None
    for order in itertools.permutations(range(len(gates))):
        if order != tuple(range(len(gates))) and _close(permute_blocks(got, order), want, allow):
            held = [""] * len(gates)
            for j, position in enumerate(order):
                held[position] = gates[j]
            return (f"gate blocks permuted: in the canonical order it holds gates ({', '.join(held)}) where "
                    f"({', '.join(gates)}) belong")
    return None


def diagnose(name: str, got: np.ndarray, want: np.ndarray, gates: tuple[str, ...], allow: Allowance,
             namer: Namer) -> str | None:
    """The porting bug that turns ``want`` into ``got`` (both canonical), in both sides' names; None if none fits."""
    mine, theirs = namer(name)
    suffix = name.rsplit("/", 1)[-1]
    if got.ndim == 2 and got.shape[0] == got.shape[1] and _close(got.T, want, allow):
        return f"{mine} holds {theirs} transposed"
    permuted = _gate_permutation(got, want, gates, allow)
    if permuted:
        return f"{mine} holds {theirs} with its {permuted}"
    if suffix in ("bias", "recurrent_bias") and np.any(want != 0):
        if _close(got, 2 * want, allow):
            return f"{mine} holds {theirs} in both bias_ih and bias_hh, which torch adds: the bias counts twice"
        if _close(got, np.zeros_like(want), allow):
            return f"{mine} is zero where {theirs} is not: the bias is in neither of torch's biases"
    if suffix == "bias" and gates == ("i", "f", "g", "o"):
        h = want.shape[-1] // 4
        shift = got - want
        c = float(np.median(shift[h:2 * h]))
        others = np.concatenate([shift[:h], shift[2 * h:]])
        if c != 0 and _close(got[h:2 * h], want[h:2 * h] + c, allow) and _close(others, 0 * others, allow):
            return (f"{mine} holds {theirs} with its forget-gate block moved by {c:+.6g}: a run-time forget_bias "
                    "(TF1's BasicLSTMCell adds 1.0) missing from, or added twice to, the stored bias")
    if suffix == "embeddings":
        for shift in (1, -1, 2, -2, 3, -3):
            a, b = (got[shift:], want[:-shift]) if shift > 0 else (got[:shift], want[-shift:])
            if _close(a, b, allow):
                return f"{mine} holds {theirs} with its rows shifted by {shift} (row i holds id i{-shift:+d})"
    return None


def _swapped_directions(got: dict, want: dict, name: str, allow_of: Callable[[str], Allowance]) -> bool:
    """Whether ``name`` (under .../fw/ or .../bw/) holds the other direction's tensor, and vice versa."""
    for a, b in (("/fw/", "/bw/"), ("/bw/", "/fw/")):
        if a in name:
            other = name.replace(a, b)
            return (other in want and other in got and _close(got[name], want[other], allow_of(name))
                    and _close(got[other], want[name], allow_of(other)))
    return False


def compare_params(got: dict[str, np.ndarray], want: dict[str, np.ndarray], framework: str, against: str,
                   stored: str, gates_of: Callable[[str], tuple[str, ...]], namer: Namer) -> list[Check]:
    """One parameter check per canonical tensor of ``want``, each failure with its diagnosis when one fits."""
    checks = []
    for name, ref in want.items():
        allow = allowance(ref, stored)
        value = got.get(name, np.full_like(ref, np.nan))
        check = compare_tensor(framework, against, "parameter", name, value, ref, allow, "float64", None,
                               gates_of(name))
        if not check.ok:
            if _swapped_directions(got, want, name, lambda n: allowance(want[n], stored)):
                mine, theirs = namer(name)
                why = f"{mine} holds the other direction's weights: directions swapped (forward and _reverse)"
            else:
                why = diagnose(name, np.asarray(value, np.float64), ref, gates_of(name), allow, namer)
            check = replace(check, diagnosis=why or f"{namer(name)[0]} differs from {namer(name)[1]}: no known "
                                                     "porting bug explains it")
        checks.append(check)
    return checks
