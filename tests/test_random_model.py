"""`compare --model random --seed N`: a drawn layer stack, named in the report, equivalent on correct code; the
draws reach every adapter path issue 9 item 5 lists."""
import os
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

from verify import engine, random_model, render

SEEDS = range(300)  # drawing only (no framework imported): well under a second


@pytest.mark.parametrize("seed, dtype", [(0, "float32"), (2, "float64"), (3, "float32"), (4, "float64"),
                                         (7, "float32"), (13, "float64")])
def test_drawn_models_are_equivalent_and_named(seed: int, dtype: str) -> None:
    entry = random_model.entry(seed)
    report = engine.compare_model("random", entry.frameworks, dtype, seed)
    assert report.verdict == "equivalent", render.table(report)
    assert f"replay: compare --model random --seed {seed}" in report.notes[0]
    assert {"tensorflow", "torch"} <= set(report.frameworks)


def test_the_same_seed_draws_the_same_model_and_seeds_differ() -> None:
    assert random_model.draw(11) == random_model.draw(11)
    assert len({random_model.draw_spec(s) for s in range(20)}) == 20


def test_a_negative_seed_is_refused_in_one_line() -> None:
    with pytest.raises(ValueError, match=r"^--model random needs a seed >= 0, got -1$"):
        random_model.draw(-1)


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


def _torch_second_biases(spec, seed: int) -> list[np.ndarray]:
    """The bias_hh tensors torch_stack.build loads for ``spec`` (the same tables and split, without torch)."""
    from adapters import tables, torch_stack
    from reference.params import init_params
    params = init_params(spec, np.random.default_rng(seed))
    out = []
    for group in torch_stack.default_groups(spec):
        for table, pre, fmt in torch_stack._tables(spec, group):
            values = tables.from_canonical(table, params, pre, fmt, split=True)
            out += [v for n, v in values.items() if n.startswith("bias_hh")]
    return out


def test_draws_reach_every_path_of_issue_9_item_5() -> None:
    """Over seeds 0..299, every option is drawn with a framework that holds it: cells (GRU with both reset
    placements), activations, gate activations, 1-3 recurrent layers, directions and merge modes, masks (Masking,
    mask_zero, batch lengths), torch's second bias non-zero, and TF1's LSTM cells and state layouts."""
    draws = {s: random_model.draw(s) for s in SEEDS}
    entries = {s: random_model.entry(s) for s in SEEDS}
    assert all(e.frameworks for e in entries.values())  # every draw is verified by someone
    reached: Counter = Counter()
    for s, d in draws.items():
        fws = entries[s].frameworks
        rec = d.spec.recurrent_layers
        for fw in fws:
            reached[(fw, "depth", len(rec))] += 1
            reached[(fw, "loss", d.spec.loss)] += 1
            reached[(fw, "lengths", d.lengths)] += 1
            for l in rec:
                reached[(fw, "cell", l.cell)] += 1
                reached[(fw, "activation", l.activation)] += 1
                if l.cell != "simple_rnn":
                    reached[(fw, "gates", l.recurrent_activation)] += 1
                if l.cell == "gru":
                    reached[(fw, "reset_after", l.reset_after)] += 1
                direction = "bidirectional" if l.bidirectional else "go_backwards" if l.go_backwards else "forward"
                reached[(fw, "direction", direction)] += 1
                if l.bidirectional:
                    reached[(fw, "merge", l.merge_mode)] += 1
                    if not l.return_sequences:
                        reached[(fw, "last_output", l.last_output)] += 1
            for layer in d.spec.layers:
                if layer.kind == "Masking":
                    reached[(fw, "mask", "Masking")] += 1
                if layer.kind == "Embedding":
                    reached[(fw, "mask", f"mask_zero={layer.mask_zero}")] += 1
        if "tf1" in fws and d.tf1_options:
            opts = dict(d.tf1_options)
            reached[("tf1", "lstm_cell", opts["lstm_cell"])] += 1
            reached[("tf1", "state_is_tuple", opts["state_is_tuple"])] += 1
        if "torch" in fws and any(l.cell in ("simple_rnn", "lstm") for l in rec):
            second = _torch_second_biases(d.spec, s)
            assert second and all(np.all(b != 0) for b in second), s
            reached[("torch", "second bias", "non-zero")] += 1

    want = []
    for fw in ("tensorflow", "torch"):
        want += [(fw, "cell", c) for c in ("simple_rnn", "lstm", "gru")]
        want += [(fw, "reset_after", r) for r in (True, False)]
        want += [(fw, "activation", a) for a in set(random_model.ACTS)]
        want += [(fw, "gates", g) for g in set(random_model.GATE_ACTS)]
        want += [(fw, "depth", n) for n in (1, 2, 3)]
        want += [(fw, "direction", d) for d in ("forward", "go_backwards", "bidirectional")]
        want += [(fw, "merge", m) for m in random_model.MERGES]
        want += [(fw, "last_output", o) for o in ("final", "last_step")]
        want += [(fw, "mask", m) for m in ("Masking", "mask_zero=True", "mask_zero=False")]
        want += [(fw, "lengths", True), (fw, "loss", "prob_ce"), (fw, "loss", "softmax_ce"), (fw, "loss", "mse")]
    # TF1 cells: each cell, every activation, 1-3 layers, each direction and merge mode, sequence_length
    want += [("tf1", "cell", c) for c in ("simple_rnn", "lstm", "gru")] + [("tf1", "reset_after", False)]
    want += [("tf1", "activation", a) for a in set(random_model.ACTS)] + [("tf1", "depth", n) for n in (1, 2, 3)]
    want += [("tf1", "direction", d) for d in ("forward", "go_backwards", "bidirectional")]
    want += [("tf1", "merge", m) for m in random_model.MERGES] + [("tf1", "lengths", True)]
    want += [("tf1", "last_output", o) for o in ("final", "last_step")]
    want += [("tf1", "lstm_cell", c) for c in random_model.TF1_LSTM_CELLS]
    want += [("tf1", "state_is_tuple", t) for t in (True, False)] + [("torch", "second bias", "non-zero")]
    missing = [w for w in want if not reached[w]]
    assert not missing, missing


def test_drawing_imports_no_framework() -> None:
    """The draws (and the frameworks each can go to) are decided before any framework is imported."""
    code = ("import sys; from verify import random_model; [random_model.entry(s) for s in range(50)]; "
            "print(sorted(m for m in ('tensorflow', 'keras', 'torch') if m in sys.modules))")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root).stdout
    assert out.strip() == "[]"
