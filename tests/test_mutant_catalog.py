"""The mutant catalogs still apply to the shipped code: a mutant whose text is gone would drop out of the figures."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.mutants import MUTANTS, Mutant
from tests.mutate_traps import MUTATIONS

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.id for m in MUTANTS])
def test_each_verdict_mutant_applies_once_and_still_parses(mutant: Mutant) -> None:
    source = (ROOT / mutant.file).read_text()
    assert source.count(mutant.old) == 1, f"{mutant.id}: {mutant.file} holds its text {source.count(mutant.old)} times"
    ast.parse(source.replace(mutant.old, mutant.new))


@pytest.mark.parametrize("trap,file,old,new,tests", MUTATIONS, ids=[m[0][:40] for m in MUTATIONS])
def test_each_trap_mutation_applies_and_still_parses(trap: str, file: str, old: str, new: str, tests: str) -> None:
    source = (ROOT / file).read_text()
    assert old in source, f"{trap}: {file} no longer holds {old!r}"
    ast.parse(source.replace(old, new))
