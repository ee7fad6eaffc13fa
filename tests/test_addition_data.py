"""The 3-digit addition data: encoding, determinism, and no question shared by training and test."""
from __future__ import annotations

import numpy as np

from verify import addition_data as ad


def test_encodes_the_books_example() -> None:
    x = ad.encode(["24+654"], ad.INPUT_STEPS)
    assert x.shape == (1, 7, 12)
    assert ad.decode(x) == ["24+654 "]
    assert list(np.argmax(x[0], -1)) == [2, 4, 10, 6, 5, 4, 11]


def test_answers_are_the_sums_and_draws_are_deterministic() -> None:
    a, _ = ad.draw(np.random.default_rng(7), 50)
    b, _ = ad.draw(np.random.default_rng(7), 50)
    np.testing.assert_array_equal(a.inputs, b.inputs)
    for q, r in zip(ad.decode(a.inputs), ad.decode(a.targets)):
        left, right = q.strip().split("+")
        assert int(r) == int(left) + int(right) and len(r) == 4
        assert 1 <= len(left) <= 3 and 1 <= len(right) <= 3


def test_held_out_questions_never_appear_in_training() -> None:
    batches, test = ad.split(np.random.default_rng(3), 20, 16, 40)
    held = set(ad.decode(test.inputs))
    assert len(held) == 40
    for b in batches:
        for q in ad.decode(b.inputs):
            left, right = q.strip().split("+")
            assert f"{left}+{right}".ljust(7) not in held and f"{right}+{left}".ljust(7) not in held
