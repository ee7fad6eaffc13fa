"""A seeded sequence-classification task for the bidirectional classifier (MNIST cannot be downloaded here).

Each of ``classes`` classes has a prototype sequence (T steps of D values in [0, 1], like an image's
rows); an example is its class's prototype plus uniform noise, clipped to [0, 1]; targets are
one-hot. Which rows carry the evidence varies per class, so both directions matter.
"""
from __future__ import annotations

import numpy as np

from reference.seq2seq_spec import Seq2SeqBatch


def _prototypes(steps: int, size: int, classes: int) -> np.ndarray:
    proto_rng = np.random.default_rng(12345)  # fixed: the task, not the draw, defines the classes
    return proto_rng.uniform(0.0, 1.0, size=(classes, steps, size))


def draw(rng: np.random.Generator, n: int, steps: int, size: int, classes: int, noise: float = 0.6) -> Seq2SeqBatch:
    labels = rng.integers(0, classes, size=n)
    x = _prototypes(steps, size, classes)[labels] + rng.uniform(-noise, noise, size=(n, steps, size))
    return Seq2SeqBatch(np.clip(x, 0.0, 1.0), np.eye(classes)[labels])


def split(rng: np.random.Generator, spec: object, train_batches: int, batch_size: int, held_out: int
          ) -> tuple[list[Seq2SeqBatch], Seq2SeqBatch]:
    args = (spec.input_steps, spec.input_size, spec.output_size)  # type: ignore[attr-defined]
    test = draw(rng, held_out, *args)
    return [draw(rng, batch_size, *args) for _ in range(train_batches)], test
