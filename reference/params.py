"""Seeded drawing of parameters and data that exercise every code path.

Weights are uniform in +-scale, so they differ per gate and per element; biases are non-zero;
initial states are non-zero: constant or zero values hide exactly the bugs the verifier looks for.
"""
from __future__ import annotations

import importlib

import numpy as np

from reference.spec import Batch, SequenceSpec


def init_params(spec: SequenceSpec, rng: np.random.Generator, scale: float | None = None) -> dict[str, np.ndarray]:
    """Draw every canonical parameter, float64, uniform in +-scale (default 1/sqrt(hidden))."""
    s = scale if scale is not None else 1.0 / np.sqrt(spec.hidden_size)
    shapes = importlib.import_module(spec.family).param_shapes(spec)
    return {name: rng.uniform(-s, s, size=shape) for name, shape in shapes.items()}


def draw_targets(spec: SequenceSpec, rng: np.random.Generator, batch: int, steps: int) -> np.ndarray:
    """Random targets of the kind the spec's loss expects."""
    lead = (batch, steps) if spec.return_sequences else (batch,)
    if spec.loss == "mse":
        return rng.uniform(-1.0, 1.0, size=lead + (spec.output_size,))
    labels = rng.integers(0, spec.output_size, size=lead)
    if spec.loss == "softmax_ce":
        return labels
    return np.eye(spec.output_size)[labels]


def draw_batch(spec: SequenceSpec, rng: np.random.Generator, batch: int, steps: int,
               with_initial_state: bool = True) -> Batch:
    """Random inputs in +-1, targets, and a non-zero initial state unless told otherwise."""
    x = rng.uniform(-1.0, 1.0, size=(batch, steps, spec.input_size))
    h0 = rng.uniform(-0.5, 0.5, size=(batch, spec.hidden_size)) if with_initial_state else None
    return Batch(x, draw_targets(spec, rng, batch, steps), h0)
