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


def _all_states(spec: SequenceSpec, rng: np.random.Generator, batch: int) -> dict[str, np.ndarray]:
    """A non-zero initial value for every state of every layer and direction."""
    from reference.layout import state_shapes
    return {n: rng.uniform(-0.5, 0.5, size=s) for n, s in state_shapes(spec, batch).items()}


def _running_sum_all_states(spec: SequenceSpec, rng: np.random.Generator, batch: int = 8, steps: int = 10) -> Batch:
    """seeds/000's counting task, with every state (h and c, every layer) started non-zero."""
    bits = rng.integers(0, 2, size=(batch, steps, spec.input_size)).astype(np.float64)
    return Batch(bits, np.cumsum(bits, axis=1)[..., :spec.output_size], _all_states(spec, rng, batch))


def _ends_agree(spec: SequenceSpec, rng: np.random.Generator, batch: int = 8, steps: int = 10) -> Batch:
    """Bit streams labelled 1 when the first and last bits are equal: needs both ends of the sequence."""
    bits = rng.integers(0, 2, size=(batch, steps, spec.input_size)).astype(np.float64)
    labels = (bits[:, 0, 0] == bits[:, -1, 0]).astype(np.int64)
    return Batch(bits, labels, _all_states(spec, rng, batch))


MODELS: dict[str, ZooModel] = {
    "rnn": ZooModel(
        SequenceSpec("rnn", input_size=1, hidden_size=8, output_size=1, activation="tanh", loss="mse",
                     accuracy="abs_tol", accuracy_tol=0.05,
                     description="simple RNN (tanh) + Dense counting ones in a 10-bit stream at every step; "
                                 "MSE loss, accuracy |y - t| < 0.05"),
        _running_sum),
    "lstm": ZooModel(
        SequenceSpec("lstm", input_size=1, hidden_size=8, output_size=1, cell="lstm", loss="mse",
                     accuracy="abs_tol", accuracy_tol=0.05,
                     description="LSTM (tanh, sigmoid gates) + Dense counting ones in a 10-bit stream at every step; "
                                 "non-zero initial h and c; MSE loss, accuracy |y - t| < 0.05"),
        _running_sum_all_states, ("tensorflow", "torch", "tf1")),
    "gru": ZooModel(
        SequenceSpec("gru", input_size=1, hidden_size=8, output_size=1, cell="gru", reset_after=True, loss="mse",
                     accuracy="abs_tol", accuracy_tol=0.05,
                     description="GRU, reset after the recurrent matmul (torch, Keras default; two biases) + Dense "
                                 "counting ones at every step; MSE loss"),
        _running_sum_all_states),
    "gru_reset_before": ZooModel(
        SequenceSpec("gru_reset_before", input_size=1, hidden_size=8, output_size=1, cell="gru", reset_after=False,
                     loss="mse", accuracy="abs_tol", accuracy_tol=0.05,
                     description="GRU, reset before the recurrent matmul (Keras reset_after=False, TF1 GRUCell; "
                                 "torch runs it as a loop of torch ops) counting ones; MSE loss"),
        _running_sum_all_states, ("tensorflow", "torch", "tf1")),
    "bidirectional": ZooModel(
        SequenceSpec("bidirectional", input_size=1, hidden_size=6, output_size=2, cell="lstm", bidirectional=True,
                     merge_mode="concat", return_sequences=False, last_output="final", loss="softmax_ce",
                     accuracy="argmax",
                     description="bidirectional LSTM (concat), last output as Keras gives it (forward after all "
                                 "steps, backward after the whole reversed sequence) + Dense: do the first and last "
                                 "bits agree? softmax cross-entropy, argmax accuracy"),
        _ends_agree, ("tensorflow", "torch", "tf1")),
    "stacked": ZooModel(
        SequenceSpec("stacked", input_size=1, hidden_size=6, output_size=1, cell="lstm", num_layers=2, loss="mse",
                     accuracy="abs_tol", accuracy_tol=0.05,
                     description="two stacked LSTM layers + Dense counting ones at every step; every layer's h and c "
                                 "start non-zero; MSE loss"),
        _running_sum_all_states, ("tensorflow", "torch", "tf1")),
}


def get(name: str) -> ZooModel:
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r}; expected one of: {', '.join(MODELS)}")
    return MODELS[name]
