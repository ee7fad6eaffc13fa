"""The torch adapter for layer stacks: built models run as the reference computes, weights read back exactly,
state_dicts matched to layers by their modules, with errors that name what disagrees."""
from collections import OrderedDict

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from adapters import torch_stack
from reference import stack
from reference.layers import Dense, Embedding, Recurrent
from reference.stack import StackSpec
from tests.stack_strategies import make_stack_case, stack_specs
from verify import engine
from verify.compare import compare_results
from verify.render import table
from verify.report import Report


def _verify(case, dtype: str) -> Report:
    model = torch_stack.build(case.spec, case.params, dtype)
    try:
        results = torch_stack.run(model, case.spec, case.batch, dtype)
    except ValueError as e:
        assume("packed sequences" not in str(e))  # a flipped padded batch: torch cannot express it
        raise
    ref, allow = engine.reference_and_allowances(case.spec, case.params, case.batch, dtype)
    time_axis, gates = engine._locators(case.spec)
    checks = compare_results("torch", "reference", results, ref, lambda q, n: allow[(q, n)], dtype, time_axis, gates)
    return Report(case.spec.name, dtype, 0, ("torch",), {}, tuple(checks), (repr(case.spec),))


@given(spec=stack_specs(), seed=st.integers(0, 2**16))
def test_float64_torch_computes_what_the_reference_computes(spec: StackSpec, seed: int) -> None:
    report = _verify(make_stack_case(spec, seed), "float64")
    assert report.verdict == "equivalent", table(report)


@given(spec=stack_specs(), seed=st.integers(0, 2**16))
def test_float32_within_the_policy(spec: StackSpec, seed: int) -> None:
    report = _verify(make_stack_case(spec, seed), "float32")
    assert report.verdict == "equivalent", table(report)


@given(spec=stack_specs(), seed=st.integers(0, 2**16))
def test_weights_read_back_bit_for_bit(spec: StackSpec, seed: int) -> None:
    case = make_stack_case(spec, seed)
    back = torch_stack.extract(torch_stack.build(spec, case.params, "float64"))
    differ = [n for n in case.params if not np.array_equal(back[n], case.params[n])]
    assert list(back) == list(case.params) and not differ, differ


def _two_layer_lstm() -> StackSpec:
    return StackSpec("m", 2, (Recurrent("lstm_a", "lstm", 3), Recurrent("lstm_b", "lstm", 3),
                              Dense("dense", 2)))


def _torch_state(spec: StackSpec, params: dict) -> "OrderedDict[str, np.ndarray]":
    """A state_dict as a user's nn.LSTM(num_layers=2) + nn.Linear would hold it (written from torch's layout)."""
    sd = OrderedDict()
    for k, layer in enumerate(("lstm_a", "lstm_b")):
        sd[f"encoder.0.rnn.weight_ih_l{k}"] = params[f"{layer}/fw/kernel"].T
        sd[f"encoder.0.rnn.weight_hh_l{k}"] = params[f"{layer}/fw/recurrent_kernel"].T
        sd[f"encoder.0.rnn.bias_ih_l{k}"] = params[f"{layer}/fw/bias"] * 0.25
        sd[f"encoder.0.rnn.bias_hh_l{k}"] = params[f"{layer}/fw/bias"] * 0.75
    sd["head.weight"], sd["head.bias"] = params["dense/kernel"].T, params["dense/bias"]
    return sd


def test_one_torch_module_computes_two_layers() -> None:
    spec = _two_layer_lstm()
    case = make_stack_case(spec, 3)
    sd = _torch_state(spec, case.params)
    groups = torch_stack.match_groups(spec, sd, "port.pt")
    assert groups == [torch_stack.Group("encoder.0.rnn", ("lstm_a", "lstm_b")), torch_stack.Group("head", ("dense",))]
    model = torch_stack.from_state_dict(spec, sd, "float64")
    back = torch_stack.extract(model)
    assert max(float(np.max(np.abs(back[n] - v))) for n, v in case.params.items()) <= 1e-15
    results = torch_stack.run(model, spec, case.batch, "float64")
    ref = stack.evaluate(spec, case.params, case.batch)
    assert "lstm_a" not in results["output"]  # inside nn.LSTM(num_layers=2): not visible
    for q in ("state", "gradient"):
        for n, v in ref[q].items():
            np.testing.assert_allclose(results[q][n], v, rtol=0, atol=1e-13 * max(1.0, np.max(np.abs(v))), err_msg=n)


@pytest.mark.parametrize("edit, expected", [
    (lambda sd: sd.update({"extra.weight": np.zeros((2, 2))}), "extra torch module extra"),
    (lambda sd: [sd.pop(k) for k in ("head.weight", "head.bias")], "no torch module for layer(s) ['dense']"),
    (lambda sd: sd.update({"head.weight": np.zeros((3, 3))}), "head.weight has shape (3, 3), but layer dense needs (2, 3)"),
    (lambda sd: sd.pop("encoder.0.rnn.bias_hh_l1"), "missing ['bias_hh_l1']"),
    (lambda sd: sd.update({"encoder.0.rnn.running_mean": np.zeros(3)}), "not nn.RNN/LSTM/GRU tensors"),
])
def test_state_dict_that_does_not_fit_is_named(edit, expected: str) -> None:
    spec = _two_layer_lstm()
    sd = _torch_state(spec, make_stack_case(spec, 3).params)
    edit(sd)
    with pytest.raises(ValueError) as e:
        torch_stack.from_state_dict(spec, sd, "float32", source="port.pt")
    assert expected in str(e.value) and "\n" not in str(e.value), str(e.value)


def test_a_linear_where_an_embedding_belongs_is_a_shape_error() -> None:
    spec = StackSpec("e", 0, (Embedding("emb", 7, 3), Recurrent("gru", "gru", 2), Dense("out", 2)))
    params = make_stack_case(spec, 1).params
    sd = {"emb.weight": params["emb/embeddings"].T, "rnn.weight_ih_l0": params["gru/fw/kernel"].T}
    with pytest.raises(ValueError, match=r"emb.weight has shape \(3, 7\), but layer emb needs \(7, 3\)"):
        torch_stack.from_state_dict(spec, {**sd, **{"rnn.weight_hh_l0": np.zeros((6, 2)), "rnn.bias_ih_l0": np.zeros(6),
                                                    "rnn.bias_hh_l0": np.zeros(6), "out.weight": np.zeros((2, 2)),
                                                    "out.bias": np.zeros(2)}}, "float32")


def test_a_mask_with_gaps_runs_through_the_loop_with_the_native_parameters() -> None:
    """Masking can mask a step in the middle; packed sequences cannot say so, the loop of torch ops can."""
    from reference.layers import Masking
    spec = StackSpec("gaps", 2, (Masking("mask", 0.0), Recurrent("lstm", "lstm", 3, zero_output_for_mask=False),
                                 Recurrent("gru", "gru", 2, bidirectional=True), Dense("head", 2)))
    case = make_stack_case(spec, 5, steps=5)
    x = case.batch.inputs.copy()
    x[0, 1], x[2, 0], x[2, 3] = 0.0, 0.0, 0.0  # gaps at the start and in the middle
    batch = type(case.batch)(x, case.batch.targets, case.batch.initial_state)
    model = torch_stack.build(spec, case.params, "float64")
    assert type(model.module_of(model.group_of["lstm"])).__name__ == "NativeStack"
    results = torch_stack.run(model, spec, batch, "float64")
    ref = stack.evaluate(spec, case.params, batch)
    for q in ("output", "state", "gradient"):
        for n, v in ref[q].items():
            np.testing.assert_allclose(results[q][n], v, rtol=0, atol=1e-13 * max(1.0, np.max(np.abs(v))), err_msg=n)


@pytest.mark.parametrize("last_output", ["final", "last_step"])
def test_bidirectional_last_output_semantics_in_torch(last_output: str) -> None:
    """final: backward after the whole reversed sequence (Keras); last_step: torch's out[:, -1], whose
    backward half has seen only the last input. Each built as claimed runs as the reference computes it."""
    layers = lambda lo: (Recurrent("bi", "lstm", 3, bidirectional=True, return_sequences=False, last_output=lo),
                         Dense("head", 2))
    spec = StackSpec("b", 2, layers(last_output))
    case = make_stack_case(spec, 8, steps=5)
    report = _verify(case, "float64")
    assert report.verdict == "equivalent", table(report)
    other = StackSpec("b", 2, layers("last_step" if last_output == "final" else "final"))
    a = torch_stack.run(torch_stack.build(spec, case.params, "float64"), spec, case.batch, "float64")
    b = torch_stack.run(torch_stack.build(other, case.params, "float64"), other, case.batch, "float64")
    assert np.max(np.abs(a["output"]["prediction"] - b["output"]["prediction"])) > 1e-3


def test_extracted_float64_weights_are_copies_of_the_modules_storage() -> None:
    """A float64 module's .double().numpy() is its live storage: extract must copy, or editing the model
    afterwards (a training step, a port) would silently change weights already read back."""
    import torch
    spec = _two_layer_lstm()
    case = make_stack_case(spec, 3)
    model = torch_stack.build(spec, case.params, "float64")
    back = torch_stack.extract(model)
    kept = {n: v.copy() for n, v in back.items()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    for n, v in back.items():
        assert np.array_equal(v, kept[n]), f"{n} changed with the module after extraction"


def test_dropout_masks_run_as_the_reference_and_one_inside_a_fused_module_is_refused() -> None:
    """One module per layer applies every mask as the reference does; nn.LSTM(num_layers=2) computes both layers in
    one call, so a mask for the Dropout between them cannot be applied: refused by name, not silently skipped."""
    from dataclasses import replace

    from reference.dropout import draw_dropout_masks
    from reference.layers import Dropout
    spec = StackSpec("d", 2, (Recurrent("a", "lstm", 3), Dropout("between", 0.5), Recurrent("b", "lstm", 3),
                              Dropout("after", 0.2), Dense("head", 1)))
    case = make_stack_case(spec, 3)
    batch = replace(case.batch, dropout_masks=draw_dropout_masks(spec, np.random.default_rng(3), 3, 4))
    got = torch_stack.run(torch_stack.build(spec, case.params, "float64"), spec, batch, "float64")
    want = stack.evaluate(spec, case.params, batch)
    assert abs(float(got["loss"]["loss"]) - float(want["loss"]["loss"])) <= 1e-14 * abs(float(want["loss"]["loss"]))
    fused = [torch_stack.Group("rnn", ("a", "b")), torch_stack.Group("head", ("head",))]
    model = torch_stack.build(spec, case.params, "float64", fused)
    with pytest.raises(ValueError, match="torch module rnn computes layers a, b as one module: a dropout mask for "
                                         "layer between between them cannot be applied"):
        torch_stack.run(model, spec, batch, "float64")
    only_after = replace(batch, dropout_masks={"after": batch.dropout_masks["after"]})
    assert np.isfinite(torch_stack.run(model, spec, only_after, "float64")["loss"]["loss"])
