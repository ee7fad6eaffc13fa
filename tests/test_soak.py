"""The soak: ``VERIFY_EXAMPLES=N`` verifies N drawn models (``compare --model random --seed 0..N-1``), one test
item each, so pytest-xdist spreads them over every core (``-n auto``) and over other machines (``--tx``; README,
"Soak"). Without VERIFY_EXAMPLES it collects nothing; benchmarks/soak.py reports examples per second per core."""
from __future__ import annotations

import os

import pytest

from verify import engine, random_model
from verify.render import failures

N = int(os.environ.get("VERIFY_EXAMPLES", "0"))
DTYPE = os.environ.get("VERIFY_SOAK_DTYPE", "float32")


@pytest.mark.parametrize("seed", range(N))
def test_drawn_model_has_no_false_alarm(seed: int) -> None:
    frameworks = random_model.entry(seed).frameworks
    report = engine.compare_model("random", frameworks, DTYPE, seed)
    assert report.verdict == "equivalent", failures(report)
