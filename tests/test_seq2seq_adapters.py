"""Both frameworks' AttentionCellWrapper models: variables in TF1's creation order, one to one with the
article's 22 parameters; exact build/extract round trips; clear errors for a wrong layout."""
from __future__ import annotations

import importlib

import numpy as np
import pytest

from adapters import seq2seq_tables
from reference.seq2seq import param_shapes
from tests.seq2seq_cases import small_case, small_spec

ADAPTERS = {"tensorflow": "adapters.keras_seq2seq", "torch": "adapters.torch_seq2seq"}


def _variables_in_order(framework: str, model) -> list[tuple[int, ...]]:
    if framework == "tensorflow":
        return [tuple(v.shape) for v in model.weights]
    return [tuple(p.shape) for p in model.parameters()]


@pytest.mark.parametrize("framework", ["tensorflow", "torch"])
@pytest.mark.parametrize("kind", ["attention", "seq2seq", "bidirectional"])
@pytest.mark.parametrize("cell", ["simple_rnn", "lstm"])
def test_variables_come_in_the_articles_order_and_round_trip(framework: str, kind: str, cell: str) -> None:
    adapter = importlib.import_module(ADAPTERS[framework])
    spec = small_spec(kind, cell=cell)
    params, _ = small_case(spec, seed=6)
    model = adapter.build(spec, params, "float64")
    table = (seq2seq_tables.keras_table if framework == "tensorflow" else seq2seq_tables.torch_table)(kind)
    assert [e.canonical for e in table] == list(param_shapes(spec))
    got = _variables_in_order(framework, model)
    assert len(got) == len(params) == {"attention": 22, "seq2seq": 6, "bidirectional": 6}[kind]
    if framework == "tensorflow":  # Keras keeps TF's shapes
        assert got == list(param_shapes(spec).values())
    else:  # torch stores (out, in); attn_w as the (V, A) weight of a 1x1 convolution
        names = [n for n, _ in model.named_parameters()]
        assert names == [e.framework[0] for e in table]
    back = adapter.extract(model)
    assert list(back) == list(params)
    for name, value in params.items():
        np.testing.assert_array_equal(back[name], value, err_msg=name)


@pytest.mark.parametrize("framework", ["tensorflow", "torch"])
def test_wrong_layout_is_refused_naming_the_expected_layout(framework: str) -> None:
    adapter = importlib.import_module(ADAPTERS[framework])
    spec = small_spec("attention")
    params, _ = small_case(spec, seed=6)
    params.pop("decoder/attention/attn_v")
    with pytest.raises(ValueError, match=r"got 21 tensors, expected 22; missing \['decoder/attention/attn_v'\].*"
                                         r"expected layout: encoder/input_projection/kernel \(7, 5\)"):
        adapter.build(spec, params, "float32")


@pytest.mark.parametrize("framework", ["tensorflow", "torch"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_extracted_weights_are_copies_that_training_does_not_overwrite(framework: str, dtype: str) -> None:
    """The verifier reads the weights after every training step: a float64 torch model's .numpy() is its
    live storage, so an extract that returned it would show every snapshot as the last one."""
    adapter = importlib.import_module(ADAPTERS[framework])
    spec = small_spec("seq2seq")
    params, _ = small_case(spec, seed=6)
    model = adapter.build(spec, params, dtype)
    before = adapter.extract(model)
    kept = {n: v.copy() for n, v in before.items()}
    batches = [small_case(spec, seed=s)[1] for s in (7, 8)]
    adapter.train(model, spec, batches, 0.5, dtype)
    after = adapter.extract(model)
    for n in kept:
        assert np.array_equal(before[n], kept[n]), f"{framework} {dtype}: {n} changed after extraction"
    assert any(not np.array_equal(after[n], kept[n]) for n in kept), f"{framework}: training changed nothing"
