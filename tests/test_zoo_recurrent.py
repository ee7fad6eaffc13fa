"""The issue-3 zoo models compare equivalent against every framework they list, in both dtypes,
and the CLI lists them and exits 0."""
from __future__ import annotations

import pytest

from verify import engine, render, zoo
from verify.cli import main

MODELS = ("lstm", "gru", "gru_reset_before", "bidirectional", "stacked")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", MODELS)
def test_zoo_model_is_equivalent(name, dtype):
    entry = zoo.get(name)
    report = engine.compare_model(name, entry.frameworks, dtype, seed=0)
    assert report.verdict == "equivalent", render.table(report)
    assert set(report.frameworks) == set(entry.frameworks)


def test_cli_lists_and_compares(capsys):
    assert main(["list"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert set(MODELS) <= set(listed)
    assert main(["compare", "--model", "bidirectional", "--frameworks", "torch", "--dtype", "float64", "--quiet"]) == 0
