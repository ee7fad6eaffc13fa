"""The tolerance policy's promises that hold by construction, checked over drawn values."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from verify import tolerance
from verify.compare import compare_tensor


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), dtype=st.sampled_from(["float32", "float64"]),
       drift=st.floats(0.0, 1.0), parted=st.booleans(), use_a=st.floats(0.0, 0.999), use_b=st.floats(0.0, 0.999))
def test_a_trained_pair_never_fails_where_both_sides_passed(seed: int, dtype: str, drift: float, parted: bool,
                                                           use_a: float, use_b: float) -> None:
    """Two frameworks trained to different weights: each within its allowance of the reference on its own
    weights, the references ``drift`` apart, values of any sign and size (greedy paths that parted make
    |ra| and |fb| unrelated). The pair check passes, whatever the rtol terms."""
    rng = np.random.default_rng(seed)
    ra = rng.normal(size=(3, 5)) * rng.uniform(0.1, 10)
    rb = ra * rng.uniform(-1, 1, size=ra.shape) if parted else ra + rng.uniform(-1, 1, size=ra.shape) * drift
    allow_a, allow_b = tolerance.for_tensor(ra, dtype), tolerance.for_tensor(rb, dtype)
    away = np.sign(ra - rb + (ra == rb))  # each side's error pointing away from the other side: the worst case
    fa = ra + away * use_a * (allow_a.atol + allow_a.rtol * np.abs(ra))
    fb = rb - away * use_b * (allow_b.atol + allow_b.rtol * np.abs(rb))
    assert compare_tensor("a", "reference", "output", "x", fa, ra, allow_a, dtype).ok
    assert compare_tensor("b", "reference", "output", "x", fb, rb, allow_b, dtype).ok
    measured = float(np.max(np.abs(ra - rb)))
    pair = tolerance.trained_pair(allow_a, allow_b, measured, float(np.max(np.abs(ra))), float(np.max(np.abs(rb))))
    check = compare_tensor("a~b", "b", "output", "x", fa, fb, pair, dtype)
    assert check.ok and check.used <= 1.0, (check.used, check.max_abs, pair)
