"""The built-in models: a spec, a batch size and a seeded data generator for each."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from reference.spec import Batch, SequenceSpec


@dataclass(frozen=True)
class ZooModel:
    spec: SequenceSpec
    make_batch: Callable[[SequenceSpec, np.random.Generator], Batch]
    frameworks: tuple[str, ...] = ("tensorflow", "torch")  # compared by default


def _running_sum(spec: SequenceSpec, rng: np.random.Generator, batch: int = 8, steps: int = 10) -> Batch:
    """Bit streams; the target at each step is the number of ones seen so far (seeds/000's task)."""
    bits = rng.integers(0, 2, size=(batch, steps, 1)).astype(np.float64)
    h0 = rng.uniform(-0.5, 0.5, size=(batch, spec.hidden_size))  # non-zero: zero states hide layout bugs
    return Batch(bits, np.cumsum(bits, axis=1), h0)


MODELS: dict[str, ZooModel] = {
    "rnn": ZooModel(
        SequenceSpec("rnn", input_size=1, hidden_size=8, output_size=1, activation="tanh", loss="mse",
                     accuracy="abs_tol", accuracy_tol=0.05,
                     description="simple RNN (tanh) + Dense counting ones in a 10-bit stream at every step; "
                                 "MSE loss, accuracy |y - t| < 0.05"),
        _running_sum),
}


def get(name: str) -> ZooModel:
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r}; expected one of: {', '.join(MODELS)}")
    return MODELS[name]
