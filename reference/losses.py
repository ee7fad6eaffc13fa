"""Losses over a model's head outputs, each with its gradient with respect to those outputs.

* ``mse``: mean over every element of (y - t)^2 (Keras MeanSquaredError, torch MSELoss).
* ``softmax_ce``: integer labels; mean over positions of logsumexp(z) - z[label]
  (TF ``sparse_softmax_cross_entropy_with_logits``, torch ``cross_entropy``).
* ``softmax_ce_steps``: integer labels (B, T); the cross-entropy summed over the steps and averaged over the
  batch (seeds/004: ``reduce_sum(sequence_loss_by_example(...)) / batch_size``), i.e. T x ``softmax_ce``.
* ``prob_ce``: integer labels, outputs already probabilities (a softmax output layer); mean over
  positions of -log(p[label]) (Keras sparse cross-entropy with from_logits=False before its clip,
  torch ``nll_loss(log(p))``).
* ``clipped_log_ce``: one-hot targets; p = softmax(z) and
  ``-mean(sum(log(clip(p, 1e-10, 1.0)) * t, axis=-1))``, exactly as the recomputation article
  (seeds/002) computes it. The clip passes gradient where 1e-10 <= p <= 1 (TF and torch agree).
"""
from __future__ import annotations

import numpy as np

CLIP_LOW = 1e-10


def softmax(z: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, shifted by the maximum so exp cannot overflow."""
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def mse(y: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    diff = y - t
    return np.mean(diff * diff), 2.0 * diff / diff.size


def softmax_ce(z: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # one array of z's size besides z: exp(z - max) becomes the softmax, then dL/dz, in place (a 10,000-word
    # vocabulary makes each such array the largest of the model); the same operations as ``softmax``, bit for bit
    zmax = z.max(axis=-1, keepdims=True)
    dz = np.subtract(z, zmax)
    np.exp(dz, out=dz)
    total = dz.sum(axis=-1, keepdims=True)
    lse = np.log(total[..., 0]) + zmax[..., 0]  # (...,)
    picked = np.take_along_axis(z, labels[..., None], axis=-1)[..., 0]
    dz /= total  # the softmax
    np.put_along_axis(dz, labels[..., None], np.take_along_axis(dz, labels[..., None], axis=-1) - 1.0, axis=-1)
    dz /= labels.size
    return np.mean(lse - picked), dz


def softmax_ce_steps(z: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    steps = labels.shape[1] if labels.ndim > 1 else 1
    loss, dz = softmax_ce(z, labels)
    dz *= steps
    return loss * steps, dz


def clipped_log_ce(z: np.ndarray, onehot: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = softmax(z)
    clipped = np.clip(p, CLIP_LOW, 1.0)
    n = p.size // p.shape[-1]
    loss = -np.mean(np.sum(np.log(clipped) * onehot, axis=-1))
    inside = (p >= CLIP_LOW) & (p <= 1.0)
    dp = np.where(inside, -onehot / clipped, 0.0) / n  # dL/dp
    dz = p * (dp - np.sum(dp * p, axis=-1, keepdims=True))  # softmax Jacobian-vector product
    return loss, dz


def prob_ce(p: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    picked = np.take_along_axis(p, labels[..., None], axis=-1)[..., 0]
    dp = np.zeros_like(p)
    np.put_along_axis(dp, labels[..., None], (-1.0 / picked)[..., None] / labels.size, axis=-1)
    return np.mean(-np.log(picked)), dp


LOSSES = {"prob_ce": prob_ce, "mse": mse, "softmax_ce": softmax_ce, "softmax_ce_steps": softmax_ce_steps, "clipped_log_ce": clipped_log_ce}


def loss_and_grad(name: str, outputs: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(scalar loss, dL/d outputs) for loss ``name``."""
    return LOSSES[name](outputs, targets)
