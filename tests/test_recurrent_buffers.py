"""The recurrent layer's preallocated buffers: runs that overlap and reuse arrays stay independent, a
consumed run refuses a second backward, dtypes are kept, and the one-step API matches the layer."""
from __future__ import annotations

import numpy as np
import pytest

from reference import gru, lstm, recurrent, simple_rnn, stack
from reference.layers import Dense, Recurrent
from reference.spec import Batch, SequenceSpec
from reference.stack import StackSpec

CELLS = {"simple_rnn": ("simple_rnn", {}), "lstm": ("lstm", {}),
         "lstm_peepholes_projection": ("lstm", {"use_peepholes": True, "proj_size": 2, "forget_bias": 0.5}),
         "gru": ("gru", {"reset_after": False}), "gru_reset_after": ("gru", {"reset_after": True})}


def _spec(name: str) -> StackSpec:
    cell, opts = CELLS[name]
    layers = (Recurrent("r0", cell, 4, **opts), Recurrent("r1", cell, 3, bidirectional=True, **opts),
              Dense("head", 2))
    return StackSpec("buffers", 3, layers, loss="mse")


def _case(spec: StackSpec, seed: int, dtype: str = "float64") -> tuple[dict, Batch]:
    rng = np.random.default_rng(seed)
    params = {n: rng.uniform(-0.7, 0.7, s).astype(dtype) for n, s in stack.param_shapes(spec).items()}
    states = {n: rng.uniform(-0.5, 0.5, s).astype(dtype) for n, s in stack.state_shapes(spec, 4).items()}
    return params, Batch(rng.uniform(-1, 1, (4, 5, 3)).astype(dtype), rng.uniform(-1, 1, (4, 5, 2)).astype(dtype),
                         states)


def _copy(results: dict) -> dict:
    return {q: {n: np.array(v, copy=True) for n, v in d.items()} for q, d in results.items()}


@pytest.mark.parametrize("cell", list(CELLS))
def test_overlapping_runs_of_one_shape_stay_independent(cell: str) -> None:
    """Two forward caches alive at once, arrays handed from a finished run to the next: every result
    equals the one its own run alone gives, and results already returned do not change."""
    spec = _spec(cell)
    (pa, ba), (pb, bb), (pc, bc) = (_case(spec, s) for s in (1, 2, 3))
    alone = {k: _copy(stack.evaluate(spec, p, b)) for k, (p, b) in {"a": (pa, ba), "b": (pb, bb)}.items()}
    ra, ca = stack.forward(spec, pa, ba)
    rb, cb = stack.forward(spec, pb, bb)
    rb["gradient"] = stack.backward(spec, pb, cb)  # gives b's arrays back while a's cache is alive
    rc = stack.evaluate(spec, pc, bc)  # runs on b's arrays
    ra["gradient"] = stack.backward(spec, pa, ca)
    stack.evaluate(spec, pb, bb)  # and once more over everything a and b returned
    for got, want in ((ra, alone["a"]), (rb, alone["b"])):
        for q in want:
            for n in want[q]:
                # same shapes, same code: equal but for BLAS rounding at another address (none seen)
                np.testing.assert_allclose(got[q][n], want[q][n], rtol=1e-13, atol=1e-15, err_msg=f"{q}/{n}")
    assert not np.array_equal(rc["gradient"]["r0/fw/kernel"], ra["gradient"]["r0/fw/kernel"])
    spare = recurrent._SPARE.held()
    assert spare  # the runs did give arrays back
    shared = [f"{q}/{n}" for r in (ra, rb, rc) for q, d in r.items() for n, v in d.items()
              if any(np.shares_memory(v, x) for x in spare)]
    assert not shared, f"returned results share memory with arrays kept for reuse: {shared}"


@pytest.mark.parametrize("cell", ["simple_rnn", "lstm", "gru"])
def test_a_second_backward_on_one_forward_cache_is_refused(cell: str) -> None:
    spec = SequenceSpec("m", 2, 3, 2, cell=cell)
    rng = np.random.default_rng(0)
    p = {"kernel": rng.uniform(-1, 1, (2, 3 * {"simple_rnn": 1, "lstm": 4, "gru": 3}[cell])),
         "recurrent_kernel": rng.uniform(-1, 1, (3, 3 * {"simple_rnn": 1, "lstm": 4, "gru": 3}[cell]))}
    s0 = tuple(np.zeros((2, 3)) for _ in range(2 if cell == "lstm" else 1))
    mod = recurrent.CELL_MODULES[cell]
    out, state, cache = recurrent.forward(cell, p, rng.uniform(-1, 1, (2, 4, 2)), s0, mod.options(spec))
    recurrent.backward(p, cache, np.ones_like(out), tuple(np.zeros_like(s) for s in state))
    with pytest.raises(ValueError, match="consumed"):
        recurrent.backward(p, cache, np.ones_like(out), tuple(np.zeros_like(s) for s in state))


@pytest.mark.parametrize("cell", list(CELLS))
def test_float32_runs_in_float32(cell: str) -> None:
    spec = _spec(cell)
    params, batch = _case(spec, 0, "float32")
    results = stack.evaluate(spec, params, batch)
    wrong = [f"{q}/{n}: {v.dtype}" for q, d in results.items() for n, v in d.items()
             if q != "accuracy" and v.dtype != np.float32]
    assert not wrong, wrong
    reference = stack.evaluate(spec, {k: v.astype(np.float64) for k, v in params.items()},
                               Batch(batch.inputs.astype(np.float64), batch.targets.astype(np.float64),
                                     {k: v.astype(np.float64) for k, v in batch.initial_state.items()}))
    for n, g in results["gradient"].items():
        np.testing.assert_allclose(g, reference["gradient"][n], rtol=1e-3, atol=1e-4, err_msg=n)


@pytest.mark.parametrize("module, spec", [
    (lstm, SequenceSpec("m", 2, 3, 2, cell="lstm", use_peepholes=True, proj_size=2, forget_bias=1.0)),
    (gru, SequenceSpec("m", 2, 3, 2, cell="gru", reset_after=True)),
    (gru, SequenceSpec("m", 2, 3, 2, cell="gru", reset_after=False)),
    (simple_rnn, SequenceSpec("m", 2, 3, 2, cell="simple_rnn")),
], ids=["lstm", "gru_after", "gru_before", "simple_rnn"])
def test_one_step_api_matches_a_one_step_layer_and_leaves_its_input_alone(module, spec) -> None:
    rng = np.random.default_rng(5)
    layer = stack.from_sequence(spec).layers[0]
    shapes = stack.layer_param_shapes(stack.from_sequence(spec), 0)
    p = {k.split("/")[-1]: rng.uniform(-1, 1, s) for k, s in shapes.items()}
    x = rng.uniform(-1, 1, (3, 1, 2))
    s0 = tuple(rng.uniform(-1, 1, (3, w)) for w in ((spec.proj_size or 3, 3) if spec.cell == "lstm" else (3,)))
    opts = module.options(layer)
    out, state, cache = recurrent.forward(spec.cell, p, x, s0, opts)
    d_out = rng.uniform(-1, 1, out.shape)
    grads, dx, d0 = recurrent.backward(p, cache, d_out, tuple(np.zeros_like(s) for s in state))

    xw = x[:, 0] @ p["kernel"] + p.get("bias", 0.0)
    xw_before = xw.copy()
    h, new_state, step_cache = module.step(p, xw, s0, opts)
    np.testing.assert_array_equal(xw, xw_before)
    np.testing.assert_allclose(h, out[:, 0], rtol=1e-14, atol=1e-15)
    for a, b in zip(new_state, state):
        np.testing.assert_allclose(a, b, rtol=1e-14, atol=1e-15)
    step_grads = {k: np.zeros_like(v) for k, v in p.items() if k not in ("kernel", "bias")}
    d_xw, d_prev = module.step_backward(p, step_cache, d_out[:, 0], tuple(np.zeros_like(s) for s in state), opts,
                                        step_grads)
    np.testing.assert_allclose(d_xw @ p["kernel"].T, dx[:, 0], rtol=1e-12, atol=1e-14)
    for a, b in zip(d_prev, d0):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    for k, g in step_grads.items():
        np.testing.assert_allclose(g, grads[k], rtol=1e-12, atol=1e-14, err_msg=k)
