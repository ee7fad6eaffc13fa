"""The issue-3 zoo models (and issue 9's bidirectional_stacked_hard) compare equivalent against every framework
they list, in both dtypes, and the CLI lists them and exits 0; the hard-sigmoid model reaches torch's loop of
torch ops with both biases non-zero, and saturates some gates."""
from __future__ import annotations

import numpy as np
import pytest

from adapters import torch_stack
from reference import activations, stack
from reference.params import init_params
from verify import engine, render, zoo
from verify.cli import main

MODELS = ("lstm", "gru", "gru_reset_before", "bidirectional", "stacked", "bidirectional_stacked_hard")
HARD = "bidirectional_stacked_hard"


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


def test_hard_sigmoid_model_is_what_its_name_says():
    entry = zoo.get(HARD)
    rec = entry.spec.recurrent_layers
    assert len(rec) == 2 and all(l.cell == "lstm" and l.bidirectional and l.merge_mode == "concat"
                                 and l.return_sequences and l.recurrent_activation == "hard_sigmoid" for l in rec)
    # TF1's BasicLSTMCell and LSTMCell gate with a fixed sigmoid: the model must not claim tf1
    assert entry.frameworks == ("tensorflow", "torch")
    batch = entry.make_batch(entry.spec, np.random.default_rng(0))
    assert batch.inputs.shape[0] >= 3 and batch.inputs.shape[1] > 1
    states = stack.initial_states(entry.spec, batch)
    assert sorted(states) == sorted(stack.state_shapes(entry.spec, 1)) and len(states) == 8
    assert all(np.all(v != 0) for v in states.values())


def _torch_biases(model) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """torch name of each bias_hh -> (its bias_ih, itself), in a built torch model."""
    tensors = torch_stack.state_dict(model)
    return {n: (tensors[n.replace("bias_hh", "bias_ih")], v) for n, v in tensors.items() if ".bias_hh_l" in n}


@pytest.mark.parametrize("fused", [False, True], ids=["module_per_layer", "one_module"])
def test_hard_sigmoid_model_torch_second_bias_is_non_zero(fused):
    """What compare builds for torch (a module per layer), and one module computing both layers as a user's
    nn.LSTM(num_layers=2, bidirectional=True) would: every bias_hh is non-zero, and bias_ih + bias_hh is the
    canonical bias exactly, so a reader that dropped bias_hh would be caught."""
    spec = zoo.get(HARD).spec
    params = init_params(spec, np.random.default_rng(0))
    if fused:
        groups = [torch_stack.Group("lstm", ("rnn/0", "rnn/1")), torch_stack.Group("head", ("head",))]
        canonical = {"lstm.bias_hh_l0": "rnn/0/fw", "lstm.bias_hh_l0_reverse": "rnn/0/bw",
                     "lstm.bias_hh_l1": "rnn/1/fw", "lstm.bias_hh_l1_reverse": "rnn/1/bw"}
    else:
        groups = None
        canonical = {"rnn_0.bias_hh_l0": "rnn/0/fw", "rnn_0.bias_hh_l0_reverse": "rnn/0/bw",
                     "rnn_1.bias_hh_l0": "rnn/1/fw", "rnn_1.bias_hh_l0_reverse": "rnn/1/bw"}
    model = torch_stack.build(spec, params, "float64", groups=groups)
    biases = _torch_biases(model)
    assert sorted(biases) == sorted(canonical)
    for name, (ih, hh) in biases.items():
        assert np.all(hh != 0), name
        np.testing.assert_array_equal(ih + hh, params[f"{canonical[name]}/bias"], err_msg=name)
    # torch's nn.LSTM gates with sigmoid only: every layer runs as the loop of torch ops
    assert {type(model.module_of(g)).__name__ for g in model.groups if g.module != "head"} == {"LoopStack"}


def test_hard_sigmoid_model_torch_biases_differ():
    """Unequal summands: a reader that took bias_ih (or bias_hh) twice gets a wrong sum."""
    spec = zoo.get(HARD).spec
    model = torch_stack.build(spec, init_params(spec, np.random.default_rng(0)), "float64")
    for name, (ih, hh) in _torch_biases(model).items():
        assert not np.array_equal(ih, hh), f"{name} equals its bias_ih"


@pytest.mark.parametrize("seed", range(5))
def test_hard_sigmoid_model_saturates_some_gates(seed, monkeypatch):
    """The digits push some gate pre-activations past +-3, where hard_sigmoid is flat: with inputs in +-1 none
    get there, and a framework computing (x + 3) / 6 without the clip would pass every compare of this model."""
    entry = zoo.get(HARD)
    rng = np.random.default_rng(seed)  # as compare draws them
    params = init_params(entry.spec, rng)
    batch = entry.make_batch(entry.spec, rng)
    seen: list[np.ndarray] = []
    f, df = activations.ACTIVATIONS["hard_sigmoid"]
    monkeypatch.setitem(activations.ACTIVATIONS, "hard_sigmoid", (lambda z: seen.append(np.abs(z)) or f(z), df))
    stack.evaluate(entry.spec, params, batch)
    z = np.concatenate([a.ravel() for a in seen])
    assert 0.005 < np.mean(z > 3.0) < 0.2, np.mean(z > 3.0)
