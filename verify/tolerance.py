"""The tolerance policy: how much a framework may differ from the float64 reference, and why.

The reference runs in float64. A framework computes the same formula in its own dtype, in its own
order of operations, so it may differ by rounding, and by nothing else.

* ``float64``: both sides round at 2^-53; only summation order differs. Allowed:
  atol = 1024 * eps64 * scale and rtol = 1024 * eps64, where scale = max |ref| over the tensor
  (1 when the tensor is all zeros). 1024 ulp of the tensor's largest value covers the few hundred
  roundings a recurrence of these sizes compounds; a 1e-3 change of one weight is ~10^9 times larger.
* ``float32``: the reference is run again in float32 on the same inputs and weights (the *noise
  floor*); its max |ref32 - ref64| is how much rounding this model, at this size, produces.
  Allowed: atol = max(64 * eps32 * scale, 8 * floor) and rtol = 64 * eps32. The factor 8 covers a
  framework whose kernels round in a different order than NumPy's (fused matmuls, oneDNN).
* Gradients: their scale is the largest |value| over *all* gradient tensors of the model, not the
  tensor's own. Every gradient is a sum of products of back-propagated errors and activations, and it
  is those errors that are rounded; a gradient that cancels to a small value keeps the rounding of
  its large terms. Measured: a 1x1 recurrent-kernel gradient cancelling to 1.6e-4 came out 4.7e-9
  off in TensorFlow float32 (325 ulp of its own value), while the float32 NumPy reference was within
  1.5e-10, also with the batch reversed or shuffled: no measured floor caught it.
* Framework against framework: the sum of the two sides' allowances against the reference
  (triangle inequality), so a pair never fails where each side passed.
* Accuracy is a count of decisions: it may differ by the share of decisions whose margin (distance
  of the output from flipping the decision) is within the outputs' own allowance.
* Parameters read back from a model must equal the weights it was built from, rounded to its
  dtype, exactly: a layout translation loses nothing.
"""
from __future__ import annotations

import numpy as np

from verify.report import Allowance

EPS = {"float64": float(np.finfo(np.float64).eps), "float32": float(np.finfo(np.float32).eps)}
ULP_FACTOR = {"float64": 1024.0, "float32": 64.0}
FLOOR_FACTOR = 8.0
RULES = {
    "float64": "float64 vs reference: atol 1024 ulp of the tensor's largest |value| (for gradients: of the "
               "model's largest gradient), rtol 1024 ulp",
    "float32": "float32 vs reference: atol the larger of 64 ulp of the tensor's largest |value| (for gradients: "
               "of the model's largest gradient) and 8 x the measured float32 noise floor, rtol 64 ulp",
    "accuracy": "accuracy: may move by the share of decisions the outputs' allowance could flip",
    "parameter": "parameters read back: exactly the weights the model was built from, rounded to its dtype",
    "pair": "framework vs framework: the sum of both frameworks' allowances against the reference",
}


def _scale(ref: np.ndarray) -> float:
    m = float(np.max(np.abs(ref))) if ref.size else 0.0
    return m if m > 0 else 1.0


def for_tensor(ref: np.ndarray, dtype: str, floor: float = 0.0, scale: float | None = None) -> Allowance:
    """Allowance for one tensor against the float64 reference; ``floor`` is the measured noise floor.

    ``scale`` overrides the tensor's own largest |value| (see GRADIENT_SCALE).
    """
    k, eps = ULP_FACTOR[dtype], EPS[dtype]
    scale = _scale(ref) if scale is None else scale
    base = k * eps * scale
    if dtype == "float64":
        return Allowance(base, k * eps, f"float64: {k:g} ulp of the tensor's scale {scale:.3g}", RULES[dtype])
    if FLOOR_FACTOR * floor > base:
        return Allowance(FLOOR_FACTOR * floor, k * eps,
                         f"{dtype}: {FLOOR_FACTOR:g} x measured noise floor {floor:.3g} (reference run in {dtype})",
                         RULES[dtype])
    return Allowance(base, k * eps, f"{dtype}: {k:g} ulp of the tensor's scale {scale:.3g} "
                                    f"(above {FLOOR_FACTOR:g} x noise floor {floor:.3g})", RULES[dtype])


def for_accuracy(margins: np.ndarray, outputs_allowance: Allowance, outputs_scale: float) -> Allowance:
    """Accuracy may move by the share of decisions that the outputs' own allowance could flip.

    ``margins``: how far each decision is from flipping, in units of the outputs. A decision is
    near a tie when both sides' errors together (2 x the outputs' allowance) could cross it.
    """
    slack = outputs_allowance.atol + outputs_allowance.rtol * outputs_scale
    near = int(np.sum(margins <= 2 * slack))
    return Allowance(near / margins.size, 0.0,
                     f"{near} of {margins.size} decisions within the outputs' allowance of flipping",
                     RULES["accuracy"])


def for_parameters(dtype: str) -> Allowance:
    return Allowance(0.0, 0.0, f"read back exactly: built from these weights rounded to {dtype}",
                     RULES["parameter"])


def combined(a: Allowance, b: Allowance) -> Allowance:
    """Framework against framework: the sum of both sides' allowances against the reference."""
    return Allowance(a.atol + b.atol, a.rtol + b.rtol, f"sum of {a.atol:.3g} and {b.atol:.3g}", RULES["pair"])
