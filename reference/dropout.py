"""The dropout masks the reference draws for a layer stack's training batches (``Batch.dropout_masks``)."""
from __future__ import annotations

import numpy as np

from reference import stack
from reference.layers import Dropout


def dropout_input_shapes(spec: stack.StackSpec, batch_size: int, steps: int) -> dict[str, tuple[int, ...]]:
    """The input shape of every Dropout layer: (B, T, width), or (B, width) after a layer returning one vector."""
    shapes = {}
    widths = stack.widths(spec)
    for i, layer in enumerate(spec.layers):
        if isinstance(layer, Dropout):
            width, seq = (spec.input_size, True) if i == 0 else widths[i - 1]
            shapes[layer.name] = (batch_size, steps, width) if seq else (batch_size, width)
    return shapes


def draw_dropout_masks(spec: stack.StackSpec, rng: np.random.Generator, batch_size: int, steps: int
                       ) -> dict[str, np.ndarray]:
    """A keep mask (float64 0/1, kept with probability 1 - rate) for every Dropout layer, seeded: the reference
    draws the units every framework drops, so no framework's random generator runs in the training loop."""
    shapes = dropout_input_shapes(spec, batch_size, steps)
    return {layer.name: (rng.random(shapes[layer.name]) >= layer.rate).astype(np.float64)
            for layer in spec.layers if isinstance(layer, Dropout)}
