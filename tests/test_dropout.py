"""reference/dropout.py: the keep masks the reference draws, one per Dropout layer, of that layer's input shape."""
from __future__ import annotations

import numpy as np

from reference import dropout
from tests.test_stack import _dropout_case


def test_dropout_masks_have_each_layers_input_shape_and_drop_about_the_rate() -> None:
    spec, case, masks = _dropout_case()
    assert {n: m.shape for n, m in masks.items()} == {"drop_in": (3, 4, 2), "drop_out": (3, 4, 3),
                                                      "drop_last": (3, 2)}
    assert all(set(np.unique(m)) <= {0.0, 1.0} for m in masks.values())
    again = dropout.draw_dropout_masks(spec, np.random.default_rng(7), 3, 4)
    assert all(np.array_equal(masks[n], again[n]) for n in masks)  # seeded
    many = dropout.draw_dropout_masks(spec, np.random.default_rng(0), 400, 4)
    for layer in spec.layers:
        if layer.kind == "Dropout":
            assert abs(1 - many[layer.name].mean() - layer.rate) < 0.02, (layer.name, many[layer.name].mean())
