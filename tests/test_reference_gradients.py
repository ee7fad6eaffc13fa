"""The reference's hand-written backward against finite differences, over drawn models and data."""
import numpy as np
import pytest
from hypothesis import given

from reference import model, simple_rnn
from reference.spec import Batch
from tests.strategies import Case, cases
from verify.gradcheck import directional_check
from verify.render import table
from verify.report import Report

H0 = "rnn/0/fw/initial_state"


def _check(case: Case) -> None:
    spec, batch = case.spec, case.batch
    h0 = batch.initial_state if batch.initial_state is not None else np.zeros((batch.inputs.shape[0], spec.hidden_size))
    point = {**case.params, "inputs": batch.inputs, H0: h0}

    def loss(p: dict) -> float:
        params = {k: v for k, v in p.items() if k not in ("inputs", H0)}
        return model.loss_only(spec, params, Batch(p["inputs"], batch.targets, p[H0]))

    grads = model.evaluate(spec, case.params, Batch(batch.inputs, batch.targets, h0))["gradient"]
    check = directional_check(loss, point, grads, np.random.default_rng(0))
    report = Report(spec.name, "float64", 0, ("reference",), {}, (check,))
    assert check.ok, table(report) + f"\n{case!r}"


@given(cases())
def test_gradients_match_finite_differences(case: Case) -> None:
    _check(case)


def _broken_step_backward(params, cache, d_out, d_state, act, grads):
    """The classic BPTT slip: the recurrent gradient flows through U instead of U^T."""
    from reference.activations import activation
    _, df = activation(act)
    h_prev, h = cache
    dz = (d_out + d_state[0]) * df(h)
    grads["recurrent_kernel"] += h_prev.T @ dz
    return dz, (dz @ params["recurrent_kernel"],)


def test_property_fails_when_backward_is_broken(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(simple_rnn, "step_backward", _broken_step_backward)
    with pytest.raises(AssertionError):
        given(cases())(_check)()
