"""Verdict quality over the mutant catalog (tests/mutants.py) and a seed sweep of correct code.

Slow (one ``compare`` per mutant, in a copy of the code), so skipped unless VERIFY_MUTANTS=1;
``python tests/mutate_traps.py --verdicts`` runs it over every core and prints the figures.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.mutants import MUTANTS, Mutant, prepare, run

pytestmark = pytest.mark.skipif(os.environ.get("VERIFY_MUTANTS") != "1",
                                reason="one compare per mutant: set VERIFY_MUTANTS=1 (tests/mutate_traps.py --verdicts)")
SWEEP = tuple(f"random:{s}" for s in range(int(os.environ.get("VERIFY_SWEEP", "40"))))


def _record(row: dict) -> None:
    out = os.environ.get("VERIFY_MUTANT_RESULTS")
    if out:
        Path(out, f"{row['id'].replace(':', '_')}.json").write_text(json.dumps(row))


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.id for m in MUTANTS])
def test_mutant_is_caught_blamed_and_named(mutant: Mutant, tmp_path: Path) -> None:
    prepare(tmp_path, mutant)
    row = run(tmp_path, mutant)
    _record(row)
    shown = json.dumps({k: row[k] for k in ("exit", "blamed", "first", "notes")}, indent=1)
    assert row["caught"], f"{mutant.id} ({mutant.bug}): exit {row['exit']}, expected 1\n{shown}\n{row['output_tail']}"
    assert row["localised"], f"{mutant.id}: blamed {row['blamed']}, expected {mutant.blame}\n{shown}"
    if mutant.diagnosis:
        assert row["diagnosed"], f"{mutant.id}: the report does not say {mutant.diagnosis!r}\n{shown}"


@pytest.mark.parametrize("model", SWEEP)
def test_correct_code_is_equivalent(model: str, tmp_path: Path) -> None:
    """The false-alarm side of the same measurement: the shipped code over drawn models."""
    seed = int(model.split(":")[1])
    m = Mutant(f"sweep:{model}", "none", "", "", "", model, "", "", dtype=("float32", "float64")[seed % 2])
    prepare(tmp_path, None)
    row = run(tmp_path, m)
    row["false_alarm"] = row["exit"] != 0
    _record(row)
    assert row["exit"] == 0, f"{model}: exit {row['exit']} on correct code\n{row['first']}\n{row['output_tail']}"
