"""The table names, per compared pair, where the worst normwise and elementwise errors occur."""
import numpy as np

from verify.compare import compare_tensor
from verify.render import table
from verify.report import Allowance, Report

LOOSE = Allowance(1e-6, 1e-6, "test", "test rule")


def test_worst_line_names_each_pairs_tensors() -> None:
    ref = np.array([1.0, -2.0, 1e-9])
    big = ref + np.array([1e-8, 0.0, 0.0])  # the largest error relative to its tensor
    small = ref + np.array([0.0, 0.0, 1e-12])  # tiny, but 1e-3 of its own element
    checks = (compare_tensor("torch", "reference", "output", "a", big, ref, LOOSE, "float64"),
              compare_tensor("torch", "reference", "gradient", "b", small, ref, LOOSE, "float64"),
              compare_tensor("tensorflow~torch", "torch", "gradient", "b", small, ref, LOOSE, "float64"))
    text = table(Report("m", "float64", 0, ("torch",), {}, checks))
    worst = [line for line in text.splitlines() if line.strip().startswith("worst")]
    assert worst == ["  worst torch vs reference: norm_rel 5.00e-09 (output a), max_rel 1.00e-03 (gradient b)",
                     "  worst tensorflow vs torch: norm_rel 5.00e-13 (gradient b), max_rel 1.00e-03 (gradient b)"], text


def test_summary_gives_each_pairs_worst_share_of_its_allowance() -> None:
    from verify.render import summary
    ref = np.array([1.0, -2.0, 1e-9])
    checks = (compare_tensor("torch", "reference", "output", "a", ref + np.array([5e-7, 0, 0]), ref, LOOSE, "float64"),
              compare_tensor("torch", "reference", "gradient", "b", ref, ref, LOOSE, "float64"))
    # 1 + 5e-7 - 1 is 5e-7 to within one rounding of 1.0 (2.2e-16): the share within 1e-8 of itself
    assert abs(checks[0].used - 0.25) < 0.25e-8 and checks[1].used == 0.0
    text = summary(Report("m", "float64", 0, ("torch",), {}, checks))
    assert "torch vs reference: 2 checks, 0 failed; worst used 0.25 of its allowance (output a)" in text, text
    assert text.splitlines()[-1].startswith("verdict: equivalent")
