"""Accuracy rules, and the margin by which each decision was taken (used to excuse near-ties).

* ``argmax``: mean of argmax(outputs) == label (labels are integers, or one-hot rows).
* ``abs_tol``: mean of |y - t| < tol over every element (seeds/000 uses tol = 0.05).
* ``sequence_abs_tol``: the share of sequences whose every element has |y - t| < tol (seeds/003 with tol 0.5:
  the whole sum right, every bit rounded to its target).
"""
from __future__ import annotations

import numpy as np


def labels_of(targets: np.ndarray, loss: str) -> np.ndarray:
    """Integer labels from integer or one-hot targets."""
    return targets if loss in ("softmax_ce", "softmax_ce_steps") else np.argmax(targets, axis=-1)


def accuracy(rule: str, outputs: np.ndarray, targets: np.ndarray, loss: str, tol: float) -> float:
    if rule == "argmax":
        return float(np.mean(np.argmax(outputs, axis=-1) == labels_of(targets, loss)))
    if rule == "sequence_abs_tol":
        hits = np.abs(outputs - targets) < tol  # (B, ...)
        return float(np.mean(hits.reshape(hits.shape[0], -1).all(axis=1)))
    return float(np.mean(np.abs(outputs - targets) < tol))


def decision_margins(rule: str, outputs: np.ndarray, targets: np.ndarray, tol: float) -> np.ndarray:
    """How far each decision is from flipping, in units of the outputs (one value per decision)."""
    if rule == "argmax":
        top2 = np.sort(outputs, axis=-1)[..., -2:]
        return (top2[..., 1] - top2[..., 0]).ravel()
    return np.abs(np.abs(outputs - targets) - tol).ravel()
