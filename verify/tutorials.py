"""The tutorials' own tasks (seeds/000, 001, 003, 004) as zoo models: layers, data, loss, accuracy, optimiser.

Each model is trained the way its tutorial trains it; ``compare`` trains it briefly (``TrainSetup.steps``),
``--reproduce`` for the tutorial's number of steps (``REPRODUCTIONS``). What each tutorial does that a
framework cannot hold is said in the model's description and in the README ("The tutorials' tasks"):

* TF1's ``BasicLSTMCell(forget_bias=b)`` adds b to the forget pre-activation at run time; Keras and torch
  have no such option, so these models hold it folded into the forget gate's initial bias (the same
  function and the same gradients; the canonical bias is then TF1's bias plus b).
* seeds/003 updates its weights with sigmoid'(y) where its loss needs sigmoid'(u) (``d_sigmoid`` of the
  output rather than of the pre-activation): its steps are not gradient steps of its loss. Every framework
  trains by its autograd, so the zoo model does too, with the true gradient.
"""
from __future__ import annotations

import functools
from typing import Any

import numpy as np

from reference.layers import Dense, Dropout, Embedding, Recurrent
from reference.layout import GATES
from reference.params import init_params
from reference.spec import Batch
from reference import stack
from reference.stack import StackSpec, state_shapes

ECHO_STEP = 3  # seeds/001: the target is the input three steps earlier
SUM_STEPS = 10  # seeds/000: ten bits per sequence
ADDITION_BITS = 8  # seeds/003: 8-bit sums of two 7-bit numbers
LM_TOKENS = 120_000  # the corpus (verify/corpus.py)
LM_VOCABULARY = 3918  # its distinct words (tests/test_tutorials.py generates it): the zoo lists lm without generating


def _zero_states(spec: StackSpec, batch: int) -> dict[str, np.ndarray]:
    return {n: np.zeros(s) for n, s in state_shapes(spec, batch).items()}


def _drawn_states(spec: StackSpec, rng: np.random.Generator, batch: int) -> dict[str, np.ndarray]:
    """Non-zero initial states for the held-out set: a zero state would hide how a side handles them."""
    return {n: rng.uniform(-0.5, 0.5, size=s) for n, s in state_shapes(spec, batch).items()}


def fold_forget_bias(spec: StackSpec, params: dict[str, np.ndarray], forget_bias: float) -> dict[str, np.ndarray]:
    """``params`` with TF1's run-time forget_bias added to every LSTM layer's forget-gate bias block."""
    out = dict(params)
    for layer in spec.recurrent_layers:
        if layer.cell != "lstm":
            continue
        f = GATES["lstm"].index("f")
        for d in layer.directions:
            name = f"{layer.name}/{d}/bias"
            bias = out[name].copy()
            bias[f * layer.hidden_size:(f + 1) * layer.hidden_size] += forget_bias
            out[name] = bias
    return out


# --- seeds/000: the sum of ten bits, BasicLSTMCell(forget_bias=0.8) --------------------------------------------

SUM_FORGET_BIAS = 0.8


def sum_spec(hidden: int = 80) -> StackSpec:
    return StackSpec(
        "sum", 1, (Dense("proj", hidden), Recurrent("lstm", "lstm", hidden, return_sequences=False), Dense("head", 1)),
        "mse", "abs_tol", 0.05,
        description=f"seeds/000: ten bits in, their sum out; a 1-to-{hidden} input projection at every step, TF1 "
                    f"BasicLSTMCell(forget_bias=0.8) (folded into the forget gate's initial bias: Keras and torch "
                    f"have no run-time forget_bias), the last output through a linear layer; mean squared error; "
                    f"accuracy = share of predictions within 0.05 of the sum; plain gradient descent at 0.01")


def sum_init(spec: StackSpec, rng: np.random.Generator) -> dict[str, np.ndarray]:
    return fold_forget_bias(spec, init_params(spec, rng), SUM_FORGET_BIAS)


def _truncated_normal(rng: np.random.Generator, shape: tuple, std: float) -> np.ndarray:
    """tf.truncated_normal: normal draws, those beyond two standard deviations drawn again."""
    x = rng.normal(0.0, std, size=shape)
    while np.any(np.abs(x) > 2 * std):
        bad = np.abs(x) > 2 * std
        x[bad] = rng.normal(0.0, std, size=int(bad.sum()))
    return x


def sum_tutorial_init(spec: StackSpec, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """seeds/000's own initialisation, for ``--reproduce``: the projection and the head (weights and biases)
    truncated normal with standard deviation 0.1; the cell as TF 0.x's BasicLSTMCell made it (its one matrix
    over [input, h] uniform in +-sqrt(3 / (input + hidden)), TF 0.x's uniform_unit_scaling default; its bias
    zero) with forget_bias 0.8 folded in. ``compare`` draws every weight non-zero instead (sum_init)."""
    shapes = stack.param_shapes(spec)
    lstm = next(l for l in spec.recurrent_layers)
    limit = np.sqrt(3.0 / (shapes["lstm/fw/kernel"][0] + lstm.hidden_size))
    params = {}
    for name, shape in shapes.items():
        if name.startswith("lstm/"):
            params[name] = np.zeros(shape) if name.endswith("bias") else rng.uniform(-limit, limit, size=shape)
        else:
            params[name] = _truncated_normal(rng, shape, 0.1)
    return fold_forget_bias(spec, params, SUM_FORGET_BIAS)


def sum_batch(spec: StackSpec, rng: np.random.Generator, batch: int, zero_state: bool = True) -> Batch:
    bits = rng.integers(0, 2, size=(batch, SUM_STEPS, 1)).astype(np.float64)
    state = _zero_states(spec, batch) if zero_state else _drawn_states(spec, rng, batch)
    return Batch(bits, bits.sum(axis=1), state)


def sum_data(spec: StackSpec, rng: np.random.Generator, steps: int, batch_size: int, held_out: int
             ) -> tuple[list[Batch], Batch]:
    """seeds/000's training: batches drawn from a pool of 1000 sequences, each from a zero state (its istate)."""
    pool = sum_batch(spec, rng, 1000)
    batches = []
    for _ in range(steps):
        pick = rng.integers(0, 1000, size=batch_size)
        batches.append(Batch(pool.inputs[pick], pool.targets[pick], _zero_states(spec, batch_size)))
    return batches, sum_batch(spec, rng, held_out, zero_state=False)


# --- seeds/001: echo the input three steps later, truncated BPTT with the state carried ---------------------------

def echo_spec(state_size: int = 4) -> StackSpec:
    return StackSpec(
        "echo", 1, (Recurrent("rnn", "simple_rnn", state_size), Dense("head", 2)), "softmax_ce", "argmax",
        description=f"seeds/001: a random bit stream echoed {ECHO_STEP} steps later; tanh RNN of {state_size} units "
                    f"(the tutorial's one weight over [input, state] is the kernel over the recurrent kernel), "
                    f"softmax over 2 classes at every step; truncated backpropagation over 15 steps with the final "
                    f"state carried into the next batch; Adagrad at 0.3")


def echo_stream(rng: np.random.Generator, batch: int, length: int) -> tuple[np.ndarray, np.ndarray]:
    """seeds/001's data: x a random bit series, y = x rolled by ECHO_STEP with zeros first, cut into ``batch``
    rows (each row one sub-series, the first index slowest)."""
    x = rng.integers(0, 2, size=batch * length)
    y = np.roll(x, ECHO_STEP)
    y[:ECHO_STEP] = 0
    return x.reshape(batch, length), y.reshape(batch, length)


def echo_data(spec: StackSpec, rng: np.random.Generator, steps: int, batch_size: int, held_out: int,
              window: int = 15) -> tuple[list[Batch], Batch]:
    x, y = echo_stream(rng, batch_size, steps * window)
    batches = []
    for s in range(steps):
        cut = slice(s * window, (s + 1) * window)
        state = _zero_states(spec, batch_size) if s == 0 else None  # later batches start where the last one ended
        batches.append(Batch(x[:, cut, None].astype(np.float64), y[:, cut].astype(np.int64), state))
    hx, hy = echo_stream(rng, held_out, window)
    return batches, Batch(hx[..., None].astype(np.float64), hy.astype(np.int64), _drawn_states(spec, rng, held_out))


# --- seeds/003: binary addition, a sigmoid RNN without biases, one sample per step ---------------------------------

def addition_spec(hidden: int = 16) -> StackSpec:
    return StackSpec(
        "binary_addition", 2,
        (Recurrent("rnn", "simple_rnn", hidden, activation="sigmoid", use_bias=False),
         Dense("head", 1, activation="sigmoid", use_bias=False)),
        "mse", "sequence_abs_tol", 0.5,
        description=f"seeds/003: a + b for a, b < 128, bits fed least significant first; sigmoid RNN of {hidden} "
                    f"units without biases, sigmoid output per bit; squared error per bit (the mean over the 8 bits, "
                    f"at lr 0.4 = the tutorial's sum of halved squares at 0.1); per-sample SGD; accuracy = the whole "
                    f"sum right (every bit rounds to its target)")


def addition_init(spec: StackSpec, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """seeds/003's weight_init_std = 1: uniform in +-sqrt(3) has standard deviation 1."""
    return init_params(spec, rng, np.sqrt(3.0))


def addition_batch(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inputs (B, 8, 2) and targets (B, 8, 1): the bits of a, b and a + b, least significant first."""
    bit = np.arange(ADDITION_BITS)
    x = np.stack([(a[:, None] >> bit) & 1, (b[:, None] >> bit) & 1], axis=-1).astype(np.float64)
    t = (((a + b)[:, None] >> bit) & 1)[..., None].astype(np.float64)
    return x, t


def addition_data(spec: StackSpec, rng: np.random.Generator, steps: int, batch_size: int, held_out: int
                  ) -> tuple[list[Batch], Batch]:
    half = 2 ** (ADDITION_BITS - 1)
    batches = []
    for _ in range(steps):
        x, t = addition_batch(rng.integers(0, half, batch_size), rng.integers(0, half, batch_size))
        batches.append(Batch(x, t, _zero_states(spec, batch_size)))
    x, t = addition_batch(rng.integers(0, half, held_out), rng.integers(0, half, held_out))
    return batches, Batch(x, t, _drawn_states(spec, rng, held_out))


def all_sums(spec: StackSpec) -> Batch:
    """Every a + b with a, b < 128 (16384 sums), from zero states: the tutorial's task, exhaustively."""
    half = 2 ** (ADDITION_BITS - 1)
    a, b = np.divmod(np.arange(half * half), half)
    x, t = addition_batch(a, b)
    return Batch(x, t, _zero_states(spec, len(a)))


# --- seeds/004: the PTB language model on a seeded corpus ------------------------------------------------------------

LM_FORGET_BIAS = 1.0  # tf.contrib.rnn.BasicLSTMCell's default, which the tutorial keeps
LM_KEEP_PROB = 0.5


@functools.lru_cache(maxsize=2)
def lm_corpus(tokens: int = LM_TOKENS) -> Any:
    from verify import corpus
    return corpus.generate(tokens)


def lm_spec(hidden: int = 32, vocabulary: int | None = None) -> StackSpec:
    v = vocabulary or LM_VOCABULARY
    drop = 1.0 - LM_KEEP_PROB
    return StackSpec(
        "lm", 0,
        (Embedding("embedding", v, hidden), Dropout("embedding_dropout", drop),
         Recurrent("lstm/0", "lstm", hidden), Dropout("lstm/0_dropout", drop),
         Recurrent("lstm/1", "lstm", hidden), Dropout("lstm/1_dropout", drop), Dense("head", v)),
        "softmax_ce_steps", "argmax",
        description=f"seeds/004: the PTB language model on a seeded corpus of {v} words (verify/corpus.py: PTB cannot "
                    f"be downloaded here); embedding {hidden}, two BasicLSTMCell layers of {hidden} (forget_bias 1.0 "
                    f"folded into the initial bias) with dropout on the embeddings and on each layer's output "
                    f"(DropoutWrapper(output_keep_prob={LM_KEEP_PROB}) semantics; masks drawn by the reference and "
                    f"injected into every framework), softmax over the vocabulary, loss summed over steps and "
                    f"averaged over the batch, gradients clipped to global norm 5, SGD at 1.0, state carried from "
                    f"batch to batch; perplexity = exp(loss / steps)")


def lm_init(spec: StackSpec, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """seeds/004's random_uniform_initializer(-0.05, 0.05), with the cells' forget_bias folded in."""
    return fold_forget_bias(spec, init_params(spec, rng, 0.05), LM_FORGET_BIAS)


def lm_windows(ids: np.ndarray, batch: int, steps: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """seeds/004's ptb_producer: the stream cut into ``batch`` rows, then consecutive windows of ``steps``
    tokens with the next token as the target."""
    rows = ids[:len(ids) // batch * batch].reshape(batch, -1)  # (B, L)
    n = (rows.shape[1] - 1) // steps
    return [(rows[:, i * steps:(i + 1) * steps], rows[:, i * steps + 1:(i + 1) * steps + 1]) for i in range(n)]


def lm_data(spec: StackSpec, rng: np.random.Generator, steps: int, batch_size: int, held_out: int,
            window: int = 10, random_start: bool = True) -> tuple[list[Batch], Batch]:
    """Training windows from the first 90% of the corpus (from a random offset in its first half, or from the
    start), passing over it again when ``steps`` asks for more than one epoch (the state is carried across the
    epoch boundary too, where the tutorial restarts from zero); each training batch with its own dropout masks.
    The held-out batch: ``held_out`` rows of one window from the last 10%, from non-zero states."""
    from reference.dropout import draw_dropout_masks
    ids = lm_corpus().ids()
    split = int(len(ids) * 0.9)
    start = int(rng.integers(0, split // 2)) if random_start else 0
    windows = lm_windows(ids[start:split], batch_size, window)
    if not windows:
        raise ValueError(f"lm: the corpus is too short for batch {batch_size} x {window}")
    batches = []
    for s in range(steps):
        x, y = windows[s % len(windows)]
        state = _zero_states(spec, batch_size) if s == 0 else None  # later batches start where the last one ended
        batches.append(Batch(x, y, state, dropout_masks=draw_dropout_masks(spec, rng, batch_size, window)))
    x, y = lm_windows(ids[split:], held_out, window)[0]
    return batches, Batch(x, y, _drawn_states(spec, rng, held_out))


def lm_epoch_steps(batch: int, window: int) -> int:
    """Training steps in one pass over the corpus's first 90% (seeds/004's epoch_size)."""
    ids = lm_corpus().ids()
    return len(lm_windows(ids[:int(len(ids) * 0.9)], batch, window))
