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
* Training, one step at a time (verify/training.py): before every SGD step the reference starts
  from the framework's own weights, takes the same batch and the same step, and is compared with
  the framework's weights after it. Nothing has had time to amplify: the step differs by the
  gradient's rounding (the gradient rule above, times the learning rate, with the float32 floor
  measured at that step) and by storing the new weight (rtol 2 ulp of the weight). The allowance
  of a tensor is the largest over the steps; the per-step training loss gets the tensor rule with
  its own measured floor.
* Training, end to end: each framework trains from the same start on the same batches with plain
  SGD; the reference runs the same SGD in float64. A training trajectory amplifies rounding
  (measured here: a 1-ulp change of the initial weights of the seq2seq model grows to 5e-12 in its
  weights after 60 steps), and one sample of a chaotic process is not a floor. So an ensemble of
  ``ENSEMBLE`` reference retrains runs in the framework's dtype from starts moved by one ulp each
  (random sign, seeded); the floor is the largest distance of any member from the float64
  trajectory. Allowed: the tensor rule of their dtype, with atol at least 8 x that floor.
* Trained frameworks against each other: their weights differ by their own training rounding, so
  their results may differ by both sides' allowances plus the measured distance between the
  reference's results on the two sets of trained weights (the triangle inequality once more; each
  side's own term is checked on its own). All three terms are absolute (rtol taken at the tensor's
  largest |value|): with an rtol relative to the other framework's value, a pair whose greedy paths
  parted at a near tie could fail where both sides passed. Such a pair uses close to all of its
  allowance by construction (the drift term is its own largest difference); it never decides a
  verdict that the sides' own checks did not.
* Greedy decoding: a framework feeds back the argmax of its own outputs. The reference recomputes
  along the symbols the framework fed back, and checks each decision: a symbol may differ from the
  reference's argmax only where the reference's top-2 margin is within twice the outputs' allowance
  (a near tie that rounding may flip, reported as a decoding divergence). In float64 a divergence
  needs a margin below ~1e-13.
"""
from __future__ import annotations

import numpy as np

from verify.report import Allowance

EPS = {"float64": float(np.finfo(np.float64).eps), "float32": float(np.finfo(np.float32).eps)}
ULP_FACTOR = {"float64": 1024.0, "float32": 64.0}
FLOOR_FACTOR = 8.0
ENSEMBLE = 8  # reference retrains from starts moved by one ulp: the end-of-training floor is their widest
STEP_RTOL_ULPS = 2.0  # a training step's new weight, stored in the framework's dtype: one rounding, twice over
RULES = {
    "float64": "float64 vs reference: atol 1024 ulp of the tensor's largest |value| (for gradients: of the "
               "model's largest gradient), rtol 1024 ulp",
    "float32": "float32 vs reference: atol the larger of 64 ulp of the tensor's largest |value| (for gradients: "
               "of the model's largest gradient) and 8 x the measured float32 noise floor, rtol 64 ulp",
    "accuracy": "accuracy: may move by the share of decisions the outputs' allowance could flip",
    "parameter": "parameters read back: exactly the weights the model was built from, rounded to its dtype",
    "pair": "framework vs framework: the sum of both frameworks' allowances against the reference",
    "trained": f"trained parameters and training losses vs the reference's SGD: the tensor rule of their dtype, "
               f"atol at least 8 x the measured training floor (the widest of {ENSEMBLE} reference retrains in the "
               f"framework's dtype from starts moved by one ulp)",
    "training step": "each SGD step from the framework's own weights before it: atol the learning rate x the "
                     "gradient rule of the dtype at that step (largest over the steps), rtol 2 ulp of the weight "
                     "(storing it); per-step losses: the tensor rule with that step's measured floor",
    "trained pair": "trained framework vs trained framework: both sides' allowances (absolute, at the tensor's "
                    "scale) plus the measured distance of the reference's results on the two sets of trained "
                    "weights",
    "decoding": "greedy decisions: may differ from the reference's argmax only at near ties (top-2 margin "
                "within twice the outputs' allowance)",
    "drift": "drift vs snapshot (check): the new result against the one the snapshot recorded may differ by the "
             "sum of both sides' allowances against the reference, as two implementations may",
    "reference drift": f"the float64 reference vs its snapshot: normwise within {1e-12:g} of the tensor's largest "
                       "|value| (float64 rounding of another summation order); more is a change of the reference",
}
REFERENCE_DRIFT = 1e-12  # the float64 reference reproduces itself normwise to this (see README, tolerance policy)


def _scale(ref: np.ndarray) -> float:
    m = float(np.max(np.abs(ref))) if ref.size else 0.0
    return m if m > 0 else 1.0


def for_tensor(ref: np.ndarray, dtype: str, floor: float = 0.0, scale: float | None = None) -> Allowance:
    """Allowance for one tensor against the float64 reference; ``floor`` is the measured noise floor.

    ``scale`` overrides the tensor's own largest |value| (gradients: see the module docstring).
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


def for_drift(allowance: Allowance) -> Allowance:
    """A framework's new result against its snapshot: old and new may each use the whole allowance against the
    reference (triangle inequality), so a drift between two results that both pass never fails."""
    return Allowance(2 * allowance.atol, 2 * allowance.rtol, f"twice {allowance.atol:.3g} + {allowance.rtol:.3g}"
                     f"|ref| ({allowance.why})", RULES["drift"])


def for_reference_drift(ref: np.ndarray) -> Allowance:
    """The reference recomputed now against the reference the snapshot recorded."""
    scale = float(np.max(np.abs(ref))) if np.size(ref) else 0.0
    return Allowance(REFERENCE_DRIFT * scale, 0.0, f"{REFERENCE_DRIFT:g} x the tensor's largest |value| "
                                                   f"{scale:.3g}", RULES["reference drift"])


def trained_pair(a: Allowance, b: Allowance, drift: float, scale_a: float, scale_b: float) -> Allowance:
    """Two trained frameworks: what each side may differ from its own reference, plus the reference's own
    drift between their two sets of weights, all absolute (each side's rtol taken at its reference's largest
    |value|), so that the triangle inequality holds elementwise: a pair never fails where both sides passed."""
    atol = a.atol + a.rtol * scale_a + b.atol + b.rtol * scale_b + drift
    return Allowance(atol, 0.0, f"{a.atol + a.rtol * scale_a:.3g} + {b.atol + b.rtol * scale_b:.3g} "
                                f"plus measured training drift {drift:.3g}", RULES["trained pair"])


def for_decisions(near_ties: int, total: int, slack: float) -> Allowance:
    """Greedy decisions: only the ``near_ties`` decisions within ``2 * slack`` of flipping may differ."""
    return Allowance(0.0, 0.0, f"{near_ties} of {total} decisions within 2 x {slack:.3g} of a tie may differ",
                     RULES["decoding"])


def for_trained(ref: np.ndarray, dtype: str, floor: float) -> Allowance:
    """Trained weights or training losses against the reference's SGD; ``floor`` as measured (see above)."""
    base = for_tensor(ref, dtype)
    if FLOOR_FACTOR * floor > base.atol:
        return Allowance(FLOOR_FACTOR * floor, base.rtol,
                         f"{dtype}: {FLOOR_FACTOR:g} x measured training floor {floor:.3g}", RULES["trained"])
    return Allowance(base.atol, base.rtol, f"{base.why} (above {FLOOR_FACTOR:g} x training floor {floor:.3g})",
                     RULES["trained"])


def for_training_step(lr: float, gradient_atols: list[float], dtype: str) -> Allowance:
    """A tensor's weights after each SGD step against the reference's step from the framework's weights before it.

    ``gradient_atols``: the gradient allowance (``for_tensor`` with the model-wide gradient scale and that
    step's measured floor) of this tensor at every step."""
    worst = max(gradient_atols, default=0.0)
    return Allowance(lr * worst, STEP_RTOL_ULPS * EPS[dtype],
                     f"{dtype}: learning rate {lr:g} x the largest per-step gradient atol {worst:.3g}; rtol "
                     f"{STEP_RTOL_ULPS:g} ulp (the stored weight)", RULES["training step"])


def for_step_losses(losses: np.ndarray, dtype: str, floors: np.ndarray) -> Allowance:
    """Per-step training losses against the reference's losses at the framework's weights before each step."""
    worst = max((for_tensor(np.asarray(v), dtype, float(f)) for v, f in zip(losses, floors)),
                key=lambda a: a.atol, default=for_tensor(np.asarray(losses), dtype))
    return Allowance(worst.atol, worst.rtol, f"the largest per-step allowance: {worst.why}", RULES["training step"])
