"""The comparison engine localises a disagreement: tensor, element, time step and gate."""
import numpy as np

from verify.compare import compare_tensor
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
