"""The built-in models: a spec, a batch size and a seeded data generator for each."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from reference.spec import Batch, SequenceSpec


@dataclass(frozen=True)
class ZooModel:
    spec: SequenceSpec
    make_batch: Callable[[SequenceSpec, np.random.Generator], Batch]
    frameworks: tuple[str, ...] = ("tensorflow", "torch")  # compared by default
    train: Any = None  # a verify.training.TrainSetup: each framework trains the model before it is verified


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


def _addition(spec: Any, rng: np.random.Generator, steps: int, batch_size: int, held_out: int) -> tuple:
    from verify import addition_data
    return addition_data.split(rng, steps, batch_size, held_out)


def _addition_batch(spec: Any, rng: np.random.Generator) -> Any:
    from verify import addition_data
    return addition_data.draw(rng, 64)[0]


def _sequences(spec: Any, rng: np.random.Generator, steps: int, batch_size: int, held_out: int) -> tuple:
    from verify import sequence_data
    return sequence_data.split(rng, spec, steps, batch_size, held_out)


def _sequence_batch(spec: Any, rng: np.random.Generator) -> Any:
    from verify import sequence_data
    return sequence_data.draw(rng, 64, spec.input_steps, spec.input_size, spec.output_size)


def _article_models() -> dict[str, ZooModel]:
    """The recomputation article's three models (seeds/002), trained briefly before they are verified.

    n_hidden is 32 rather than the article's 128: the verification is the same at any size, and 32
    keeps the cold-start run of ``compare --model attention`` well inside its time budget on 2 cores.
    """
    from reference.seq2seq_spec import Seq2SeqSpec
    from verify.training import TrainSetup

    addition = TrainSetup(steps=100, batch_size=32, lr=0.5, held_out=100, make_data=_addition)
    return {
        "attention": ZooModel(
            Seq2SeqSpec("attention", kind="attention", hidden_size=32,
                        description="seeds/002 section 3: BasicRNNCell encoder-decoder, both cells in TF1's "
                                    "AttentionCellWrapper (22 parameters), 3-digit addition, greedy decoding; "
                                    "the article's clipped log loss and accuracy"),
            _addition_batch, train=addition),
        "seq2seq": ZooModel(
            Seq2SeqSpec("seq2seq", kind="seq2seq", hidden_size=32,
                        description="seeds/002 section 1: BasicRNNCell encoder-decoder feeding back its argmax, "
                                    "3-digit addition; the article's clipped log loss and accuracy"),
            _addition_batch, train=addition),
        "attention_lstm": ZooModel(
            Seq2SeqSpec("attention_lstm", kind="attention", hidden_size=32, cell="lstm", forget_bias=1.0,
                        description="the attention model with TF1 BasicLSTMCells (forget_bias 1.0), as the book the "
                                    "article studies used; the query reads [c, h]"),
            _addition_batch, train=addition),
        "bidirectional_classifier": ZooModel(
            Seq2SeqSpec("bidirectional_classifier", kind="bidirectional", input_size=8, output_size=10,
                        hidden_size=32, input_steps=8,
                        description="seeds/002 section 2: forward and backward BasicRNNCells, TF1 last-output "
                                    "semantics, classifier on 8x8 seeded prototype sequences (10 classes)"),
            _sequence_batch, train=TrainSetup(steps=100, batch_size=32, lr=0.5, held_out=100,
                                              make_data=_sequences)),
    }


MODELS.update(_article_models())


def get(name: str) -> ZooModel:
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r}; expected one of: {', '.join(MODELS)}")
    return MODELS[name]
