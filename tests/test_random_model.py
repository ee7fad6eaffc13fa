"""`compare --model random --seed N`: a drawn layer stack, named in the report, equivalent on correct code."""
import pytest

from verify import engine, random_model, render


@pytest.mark.parametrize("seed, dtype", [(0, "float32"), (2, "float64"), (3, "float32"), (4, "float64")])
def test_drawn_models_are_equivalent_and_named(seed: int, dtype: str) -> None:
    entry = random_model.entry(seed)
    report = engine.compare_model("random", entry.frameworks, dtype, seed)
    assert report.verdict == "equivalent", render.table(report)
    assert f"replay: compare --model random --seed {seed}" in report.notes[0]
    assert {"tensorflow", "torch"} <= set(report.frameworks)


def test_the_same_seed_draws_the_same_model_and_seeds_differ() -> None:
    assert random_model.draw_spec(11) == random_model.draw_spec(11)
    assert len({random_model.draw_spec(s) for s in range(20)}) == 20


def test_draws_reach_every_layer_kind_and_option() -> None:
    specs = [random_model.draw_spec(s) for s in range(200)]
    layers = [l for s in specs for l in s.layers]
    rec = [l for l in layers if l.kind == "Recurrent"]
    assert {l.kind for l in layers} == {"Embedding", "Masking", "Dropout", "Dense", "Recurrent"}
    assert {l.activation for l in layers if l.kind == "Dense"} == {"relu", "tanh", "sigmoid", "linear", "softmax"}
    assert {l.cell for l in rec} == {"lstm", "gru", "simple_rnn"}
    assert {l.merge_mode for l in rec if l.bidirectional} == {"concat", "sum", "mul", "ave"}
    assert {l.recurrent_activation for l in rec} == set(random_model.GATE_ACTS)
    assert any(l.go_backwards for l in rec) and any(not l.return_sequences for l in rec)
