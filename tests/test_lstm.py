"""Reference LSTM: a hand-worked known answer, a scalar re-derivation, finite differences, and the
hard_sigmoid and gate-order traps."""
from __future__ import annotations

import math

import numpy as np
import pytest

from reference import lstm, model
from reference.activations import activation
from reference.spec import Batch, SequenceSpec
from tests.recurrent_strategies import build, check_gate_order_trap, finite_difference_errors, make_case, verify_case
from verify import render


def test_known_answer_one_step():
    """Pre-activations chosen so every gate has a different, exact value: i = 0.5, f = 0.75,
    g = 0.6, o = 0.2; c0 = 1, so c1 = 0.75 * 1 + 0.5 * 0.6 = 1.05 and h1 = 0.2 * tanh(1.05)."""
    spec = SequenceSpec("ka", 1, 1, 1, cell="lstm")
    kernel = np.array([[0.0, math.log(3.0), math.atanh(0.6), math.log(0.25)]])
    p = {"kernel": kernel, "recurrent_kernel": np.zeros((1, 4)), "bias": np.zeros(4)}
    h, (h1, c1), _ = lstm.step(p, np.array([[1.0]]) @ kernel, (np.zeros((1, 1)), np.ones((1, 1))), spec)
    assert c1[0, 0] == pytest.approx(1.05, abs=1e-15)
    assert h1[0, 0] == pytest.approx(0.2 * math.tanh(1.05), abs=1e-15)
    # forget_bias ln(7/3) moves z_f from ln 3 to ln 7: f = 7/8 and c1 = 0.875 + 0.3
    fb = SequenceSpec("ka", 1, 1, 1, cell="lstm", forget_bias=math.log(7.0 / 3.0))
    _, (_, c_fb), _ = lstm.step(p, np.array([[1.0]]) @ kernel, (np.zeros((1, 1)), np.ones((1, 1))), fb)
    assert c_fb[0, 0] == pytest.approx(1.175, abs=1e-15)


def _scalar_lstm(spec, p, x, h0, c0):
    """The LSTM written element by element with math.exp: independent of the vectorised code."""
    s, _ = activation(spec.recurrent_activation)
    a, _ = activation(spec.activation)
    sc = lambda f, v: float(f(np.array([v]))[0])  # noqa: E731
    b_, t_, d_ = x.shape
    n = spec.hidden_size
    outs = np.zeros((b_, t_, n))
    hs, cs = h0.copy(), c0.copy()
    for b in range(b_):
        h, c = list(h0[b]), list(c0[b])
        for t in range(t_):
            z = [sum(x[b, t, d] * p["kernel"][d, col] for d in range(d_)) + p["bias"][col]
                 + sum(h[k] * p["recurrent_kernel"][k, col] for k in range(n)) for col in range(4 * n)]
            new_c, new_h = [], []
            for j in range(n):
                i_, f_ = sc(s, z[j]), sc(s, z[n + j] + spec.forget_bias)
                g_, o_ = sc(a, z[2 * n + j]), sc(s, z[3 * n + j])
                new_c.append(f_ * c[j] + i_ * g_)
                new_h.append(o_ * sc(a, new_c[-1]))
            h, c = new_h, new_c
            outs[b, t] = h
        hs[b], cs[b] = h, c
    return outs, hs, cs


@pytest.mark.parametrize("acts", [("tanh", "sigmoid"), ("relu", "hard_sigmoid"), ("tanh", "hard_sigmoid_keras2")])
def test_matches_scalar_rederivation(acts):
    spec = SequenceSpec("s", 2, 3, 2, cell="lstm", activation=acts[0], recurrent_activation=acts[1], forget_bias=0.5)
    case = make_case(spec, 5, batch=3, steps=4)
    res = model.evaluate(spec, case.params, case.batch)
    p = {k[len("rnn/0/fw/"):]: v for k, v in case.params.items() if k.startswith("rnn/0/fw/")}
    outs, h, c = _scalar_lstm(spec, p, case.batch.inputs, case.batch.initial_state["rnn/0/fw"],
                              case.batch.initial_state["rnn/0/fw/c"])
    np.testing.assert_allclose(res["output"]["hidden"], outs, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(res["state"]["rnn/0/fw"], h, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(res["state"]["rnn/0/fw/c"], c, rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("spec", [
    SequenceSpec("plain", 2, 3, 2, cell="lstm"),
    SequenceSpec("acts", 2, 3, 2, cell="lstm", activation="relu", recurrent_activation="hard_sigmoid_keras2",
                 loss="softmax_ce", accuracy="argmax"),
    SequenceSpec("tf1", 2, 3, 2, cell="lstm", use_peepholes=True, forget_bias=1.0, proj_size=2),
    SequenceSpec("last", 2, 3, 2, cell="lstm", return_sequences=False, go_backwards=True, use_bias=False),
], ids=lambda s: s.name)
def test_gradients_match_finite_differences(spec):
    errors = finite_difference_errors(make_case(spec, 3, batch=3, steps=3))
    assert max(errors.values()) < 1e-8, errors


# ---- traps -------------------------------------------------------------------------------------

def test_hard_sigmoid_definitions_against_frameworks():
    """Keras 3's hard_sigmoid is relu6(x+3)/6, as torch's Hardsigmoid; Keras 2's was clip(0.2x+0.5)."""
    from adapters.tf_import import import_tf
    import torch
    _, keras = import_tf()
    z = np.linspace(-4, 4, 33)
    ours, _ = activation("hard_sigmoid")
    keras2, _ = activation("hard_sigmoid_keras2")
    np.testing.assert_array_equal(ours(z), keras.ops.convert_to_numpy(keras.activations.hard_sigmoid(z)))
    np.testing.assert_array_equal(ours(z), torch.nn.functional.hardsigmoid(torch.tensor(z)).numpy())
    assert np.max(np.abs(keras2(z) - ours(z))) > 0.05


@pytest.mark.parametrize("framework", ["tensorflow", "torch"])
@pytest.mark.parametrize("reference_act", ["hard_sigmoid", "hard_sigmoid_keras2"])
def test_trap_hard_sigmoid_definition(framework, reference_act):
    """A model built with Keras 3 / torch hard_sigmoid gates, checked against a reference that uses
    the other definition (the porting bug), must mismatch."""
    built = SequenceSpec("hs", 2, 3, 2, cell="lstm", recurrent_activation="hard_sigmoid")
    case = make_case(built, 21)
    model_ = build(framework, built, case.params, "float64")
    claimed = type(case)(SequenceSpec("hs", 2, 3, 2, cell="lstm", recurrent_activation=reference_act),
                         case.params, case.batch)
    report = verify_case(claimed, framework, "float64", model=model_)
    if reference_act == "hard_sigmoid":
        assert report.verdict == "equivalent", render.table(report)
    else:
        assert not report.find(framework, "output", "prediction").ok, render.table(report)


TF1_ORDER = (0, 2, 1, 3)  # canonical i, f, g, o read as TF1's i, j, f, o


@pytest.mark.parametrize("port", ["correct", "order_ignored"])
@pytest.mark.parametrize("framework", ["tensorflow", "tf1"])
def test_trap_gate_order(framework, port):
    """An LSTM port that ignores the gate order swaps f and g: TF1's i, j, f, o blocks copied into a
    Keras LSTM (i, f, c, o), or canonical i, f, g, o blocks copied into a TF1 cell's kernel. The
    read-back kernel is wrong in exactly gates f and g, and the outputs differ from the intended ones."""
    spec = SequenceSpec("order", 2, 3, 2, cell="lstm")
    check_gate_order_trap(make_case(spec, 8), framework, port, TF1_ORDER, {"f", "g"})


def test_initial_state_dict_rejects_unknown_and_misshapen_states():
    spec = SequenceSpec("s", 2, 3, 2, cell="lstm")
    case = make_case(spec, 1)
    with pytest.raises(ValueError, match="rnn/0/bw"):
        model.evaluate(spec, case.params, Batch(case.batch.inputs, case.batch.targets, {"rnn/0/bw": np.zeros((3, 3))}))
    with pytest.raises(ValueError, match=r"rnn/0/fw/c: expected shape \(3, 3\)"):
        model.evaluate(spec, case.params, Batch(case.batch.inputs, case.batch.targets, {"rnn/0/fw/c": np.zeros((3, 2))}))
