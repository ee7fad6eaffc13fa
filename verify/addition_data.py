"""The 3-digit addition task of the book the article studies ("24+654" -> "678"), drawn from a seed.

Questions are "a+b" with 1- to 3-digit numbers (the number of digits drawn first, as the book's
``n()`` does), padded with spaces to 7 characters; answers are str(a + b) padded to 4. The
vocabulary has 12 symbols, "0123456789+ " in that order, and every character is one-hot encoded.
The book also skips a pair it has already drawn (in either order); so does ``draw``.
"""
from __future__ import annotations

import numpy as np

from reference.seq2seq_spec import Seq2SeqBatch

CHARS = "0123456789+ "
INDEX = {c: i for i, c in enumerate(CHARS)}
DIGITS = 3
INPUT_STEPS = 2 * DIGITS + 1
OUTPUT_STEPS = DIGITS + 1


def _number(rng: np.random.Generator) -> int:
    n = int(rng.integers(1, DIGITS + 1))
    return int("".join(str(int(d)) for d in rng.integers(0, 10, size=n)))


def encode(texts: list[str], width: int) -> np.ndarray:
    """Strings (padded with spaces to ``width``) -> one-hot (N, width, 12)."""
    idx = np.array([[INDEX[c] for c in t.ljust(width)] for t in texts], dtype=np.int64)
    return np.eye(len(CHARS))[idx]


def decode(onehot: np.ndarray) -> list[str]:
    """One-hot or scores (N, T, 12) -> strings."""
    return ["".join(CHARS[i] for i in row) for row in np.argmax(onehot, axis=-1)]


def draw(rng: np.random.Generator, n: int, exclude: set | None = None) -> tuple[Seq2SeqBatch, set]:
    """``n`` distinct questions (none in ``exclude``) and the set of pairs drawn."""
    seen = set(exclude or ())
    pairs: list[tuple[int, int]] = []
    while len(pairs) < n:
        a, b = _number(rng), _number(rng)
        key = tuple(sorted((a, b)))
        if key in seen:
            continue
        seen.add(key)
        pairs.append((a, b))
    x = encode([f"{a}+{b}" for a, b in pairs], INPUT_STEPS)
    y = encode([str(a + b) for a, b in pairs], OUTPUT_STEPS)
    return Seq2SeqBatch(x, y), {tuple(sorted(p)) for p in pairs}


def split(rng: np.random.Generator, train_batches: int, batch_size: int, held_out: int
          ) -> tuple[list[Seq2SeqBatch], Seq2SeqBatch]:
    """Training batches and a held-out set with no question in common (the held-out set first)."""
    test, seen = draw(rng, held_out)
    batches = []
    for _ in range(train_batches):
        b, drawn = draw(rng, batch_size, seen)  # a pair may recur across training batches, never in the test set
        batches.append(b)
    return batches, test
