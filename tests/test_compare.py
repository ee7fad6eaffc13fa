"""The comparison engine localises a disagreement: tensor, element, time step and gate."""
import numpy as np
import pytest

from verify.compare import compare_steps, compare_tensor
from verify.report import Allowance

TIGHT = Allowance(1e-12, 1e-12, "test", "test")


def test_names_first_bad_step_and_worst_element() -> None:
    ref = np.random.default_rng(0).uniform(-1, 1, size=(3, 6, 4))
    x = ref.copy()
    x[1, 4, 2] += 1e-6
    x[2, 2, 0] += 1e-9  # smaller, but earlier in time
    c = compare_tensor("fw", "reference", "output", "hidden", x, ref, TIGHT, "float64", time_axis=1)
    assert not c.ok
    assert (c.first_bad_step, c.where, c.n_bad) == (2, (1, 4, 2), 2), c
    assert np.isclose(c.max_abs, 1e-6, rtol=1e-6), c


def test_names_the_gate_block() -> None:
    ref = np.random.default_rng(1).uniform(-1, 1, size=(5, 4 * 3))  # 4 gates of 3 units
    x = ref.copy()
    x[0, 7] += 1e-3  # column 7 lies in the third block
    c = compare_tensor("fw", "reference", "gradient", "rnn/0/fw/kernel", x, ref, TIGHT, "float64",
                       gates=("i", "f", "g", "o"))
    assert (c.gate, c.bad_gates) == ("g", ("g",)), c


def test_equal_tensors_pass_with_zero_error() -> None:
    ref = np.linspace(-1, 1, 12).reshape(3, 4)
    c = compare_tensor("fw", "reference", "state", "s", ref.copy(), ref, Allowance(0, 0, "", ""), "float64")
    assert c.ok and c.max_abs == 0 and c.max_rel == 0 and c.ulp == 0, c


def test_ulp_counts_in_the_frameworks_dtype() -> None:
    ref = np.array([1.0, 2.0])
    x = np.array([1.0 + 2 * np.finfo(np.float32).eps, 2.0])
    c = compare_tensor("fw", "reference", "output", "y", x, ref, TIGHT, "float32")
    assert np.isclose(c.ulp, 2.0), c


def test_nonzero_where_reference_is_zero_has_no_finite_relative_error() -> None:
    c = compare_tensor("fw", "reference", "gradient", "g", np.array([0.0, 1e-20]), np.array([0.0, 0.0]),
                       TIGHT, "float64")
    assert c.max_rel is None and c.ok, c  # within atol, yet relatively infinite


def test_nan_and_wrong_shape_fail() -> None:
    ref = np.ones((2, 3))
    nan = compare_tensor("fw", "reference", "loss", "l", np.array([[1, np.nan, 1], [1, 1, 1]]), ref, TIGHT, "float64")
    shape = compare_tensor("fw", "reference", "loss", "l", np.ones((3, 2)), ref, TIGHT, "float64")
    assert not nan.ok and nan.where == (0, 1), nan
    assert not shape.ok and "shape" in shape.allowed.why, shape


def test_norm_rel_is_relative_to_the_tensors_largest_value() -> None:
    ref = np.array([[2.0, -4.0], [1e-8, 0.5]])
    x = ref.copy()
    x[1, 0] += 4e-16
    c = compare_tensor("fw", "reference", "gradient", "g", x, ref, TIGHT, "float64")
    assert np.isclose(c.norm_rel, 1e-16, rtol=1e-3) and np.isclose(c.max_rel, 4e-8, rtol=1e-3), c


def test_elementwise_1e12_fails_the_reference_against_itself() -> None:
    """Why float64 agreement is judged normwise (norm_rel), not elementwise (max_rel).

    The reference run on the same batch in another order is the same function computed with another,
    equally valid, summation order. One kernel-gradient element cancels to 2.6e-9 while the tensor's
    largest is 8.8e-4; reordering the batch moves it by up to 3.3e-12 of itself (found among 300 drawn
    cases, 2 of which exceeded 1e-12; also with OpenBLAS's Sandybridge kernels: 2.7e-12), while the
    error relative to the tensor's largest value stays below 1e-15. An elementwise bound of 1e-12
    would call the oracle different from itself; the normwise one does not.
    """
    from itertools import permutations

    from reference import model
    from reference.spec import Batch, SequenceSpec
    from tests.recurrent_strategies import make_case
    from verify import tolerance

    spec = SequenceSpec("drawn", input_size=4, hidden_size=3, output_size=3, cell="lstm", activation="tanh",
                        recurrent_activation="sigmoid", use_bias=False, forget_bias=1.0, proj_size=2,
                        num_layers=2, bidirectional=True, merge_mode="ave", last_output="last_step",
                        return_sequences=False, loss="softmax_ce", accuracy="argmax")
    case, name = make_case(spec, seed=3, batch=3, steps=4), "rnn/0/fw/kernel"
    ref = model.evaluate(spec, case.params, case.batch)["gradient"][name]
    checks = []
    for order in map(list, permutations(range(3))):
        b = case.batch
        reordered = Batch(b.inputs[order], b.targets[order], {k: v[order] for k, v in b.initial_state.items()})
        again = model.evaluate(spec, case.params, reordered)["gradient"][name]
        checks.append(compare_tensor(f"reference, batch order {order}", "reference", "gradient", name, again, ref,
                                     tolerance.for_tensor(ref, "float64"), "float64"))
    worst = max(checks, key=lambda c: c.max_rel)
    assert all(c.ok and c.norm_rel < 1e-15 for c in checks) and worst.max_rel > 1e-12, checks


def _steps_case(seed: int, shape: tuple, bad: str) -> tuple[list, list]:
    """Weights after each of 6 steps and the reference's (float32 against float64, as training compares them),
    with what ``bad`` names: nothing, errors at some steps, an inf, a non-zero where the reference is zero."""
    rng = np.random.default_rng(seed)
    refs = [rng.uniform(-1, 1, size=shape) for _ in range(6)]
    xs = [r.astype(np.float32) for r in refs]
    if bad in ("steps", "inf", "zero"):
        xs[3].reshape(-1)[rng.integers(xs[3].size)] += 1e-2
        xs[5].reshape(-1)[rng.integers(xs[5].size)] -= 2e-2
    if bad == "inf":
        xs[1].reshape(-1)[0] = np.inf
    if bad == "tie":  # the same largest error at steps 2 and 4: the first is the one named
        xs[2].reshape(-1)[0] += 1e-2
        refs[4], xs[4] = refs[2].copy(), xs[2].copy()
    if bad == "zero":
        refs[2].reshape(-1)[1] = 0.0
        xs[2].reshape(-1)[1] = 1e-3
    return xs, refs


@pytest.mark.parametrize("shape", [(8,), (3, 8), (2, 3, 4)])
@pytest.mark.parametrize("bad", ["none", "steps", "inf", "zero", "tie"])
@pytest.mark.parametrize("gates", [(), ("i", "f", "g", "o")])
def test_compare_steps_is_compare_tensor_over_the_stacked_steps(shape: tuple, bad: str, gates: tuple) -> None:
    """One step at a time, the same check (every field) as stacking the steps and comparing along axis 0."""
    xs, refs = _steps_case(len(shape) + len(bad), shape, bad)
    allow = Allowance(1e-6, 1e-6, "test", "test")
    one = compare_steps("fw", "reference", "training step", "w", xs, refs, allow, "float32", gates)
    whole = compare_tensor("fw", "reference", "training step", "w", np.stack(xs), np.stack(refs), allow, "float32", 0,
                           gates)
    assert one == whole, (one, whole)
    assert one.ok == (bad == "none"), one
    if bad == "tie":
        assert one.where[0] == 2, one
