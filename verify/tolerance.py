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
* TF32 (``compare --device cuda``, verify/device.py): on an Ampere or later NVIDIA GPU with TF32 enabled, a float32
  matmul, convolution or cuDNN RNN kernel rounds its operands to TensorFloat-32 (float32's exponent, 10 stored
  mantissa bits: unit roundoff u = 2^-11 instead of float32's 2^-24) and accumulates in float32. Each term of the
  float32 rule is a count of roundings times eps = 2u (64 ulp), or a floor measured at float32's u; to first order a
  rounding error is proportional to u, so the same counts at TF32's u give the rule scaled by u_TF32 / u_32 = 2^13:
  atol = max(64 * 2^-10 * scale, 8 * 2^13 * floor), rtol = 64 * 2^-10 = 0.0625 (``for_precision``). It treats every
  rounding of the run as a TF32 rounding, where only the kernels' operands are (activations, gates and the
  accumulation stay float32): an upper bound, applied to every check of a framework any of whose kernels run at
  TF32. Measured earlier on an H100: cuDNN LSTM vs float64 3e-7 relative with TF32 off, 4e-4 with it on. float64
  kernels have no TF32: float64 keeps its rule on any device. Under TF32 a 1e-3 relative error is within rounding:
  turn TF32 off (torch.backends.cuda.matmul.fp32_precision / torch.backends.cudnn.rnn.fp32_precision "ieee") to
  verify at float32's resolution.
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
* Training, one step at a time (verify/training.py): before every optimiser step the reference starts
  from the framework's own weights, takes the same batch and the same step, and is compared with
  the framework's weights after it. Nothing has had time to amplify: the step differs by the
  gradient's rounding (the gradient rule above, with the float32 floor measured at that step) as the
  optimiser passes it on, by the update's own rounding and by storing the new weight (rtol 2 ulp of
  the weight). For plain SGD the first is the learning rate times the gradient rule. An optimiser
  with state (momentum, accumulators, Adam's moments) also carries the reference's state along the
  framework's weights, and that state differs from the framework's by the earlier steps' gradient
  rounding: ``optimizer_step_error`` propagates the gradient rule through the update and the state
  to first order, by running the reference's step from every corner of the box of gradient and
  state deviations (the update and the state are elementwise, so each element's worst corner is
  among them; global-norm clipping is bounded before, in closed form), and adds 8 ulp of the update
  (a handful of roundings) and 2 ulp of each state value per step. An adaptive optimiser's update
  can be insensitive to its gradient (Adam's first step is lr x sign(g) but for eps) or very
  sensitive (a gradient element near eps): the propagation measures which, element by element. The
  allowance of a tensor is the largest over the steps; the per-step training loss gets the tensor
  rule with its own measured floor.
* Training, end to end: each framework trains from the same start on the same batches with its
  optimiser (plain SGD unless told); the reference runs the same optimiser, in that framework's
  variant (reference/optimizers.py), in float64. A training trajectory amplifies rounding
  (measured here: a 1-ulp change of the initial weights of the seq2seq model grows to 5e-12 in its
  weights after 60 steps), and one sample of a chaotic process is not a floor. So an ensemble of
  ``ENSEMBLE`` reference retrains runs in the framework's dtype from starts moved by one ulp each
  (random sign, seeded); the floor is the largest distance of any member from the float64
  trajectory. Allowed: the tensor rule of their dtype, with atol at least 8 x that floor. In float64 a member
  rounds as the reference does, step for step, so only its start differs; a framework's float64 kernels round
  each step in their own order, and an adaptive optimiser can amplify that at one step (Adagrad where the
  accumulator is near zero: ``sum``, 20 steps, torch ended 7.5 x the floor of ulp-moved starts while every step
  was within its allowance). So in float64 each member's weights after step s also move by the framework's
  measured deviation from the reference's step s (its largest over each tensor, capped at that step's
  allowance), a random sign per element; in float32 each member's own float32 rounding plays that part.
* Clipping by the global norm (``clip_norm``): a framework reports the global norm it clipped by at each step
  (torch: clip_grad_norm_'s return value; Keras: its ``global_norm`` on the same gradients), checked against the
  float64 norm of the reference's gradients at the framework's weights before that step (one check over the
  steps). A norm of n squares summed in the dtype, in any order, is off by at most rel = gamma_m / (1 + sqrt(1 -
  gamma_m)) + u relative (u = eps / 2, gamma_m = m u / (1 - m u); Higham, Accuracy and Stability, 2nd ed., section
  4.2: each non-negative term passes through at most m roundings, the root halves the relative error, the last
  root rounds once more), m = n_max + k + 3 for k tensors of at most n_max elements (torch's norm of per-tensor
  norms: a root and a square per tensor, then k - 1 additions; Keras's sum of per-tensor sums fits the same m).
  The framework's gradients may be off by the gradient rule (|dg| <= a = atol + rtol |g| elementwise), which moves
  their norm by at most dev = max(||(|g| + a)|| - ||g||, ||g|| - ||max(|g| - a, 0)||) (the box's extremes: exact
  for the rule, first-order in a where g is sparse): allowed |norm_fw - norm| <= (1 + rel) dev + rel norm, dev the
  largest over the steps. For lm (n_max 125376, torch k 11) rel is 3.8e-3 and dev 9e-4; torch 2.13's
  clip_grad_norm_ was measured up to 6.7e-5 relative off (used 0.017), Keras's 8.9e-7. A norm that leaves out a
  tensor holding a share q of the squared norm is about q / 2 off: named at its step where q / 2 exceeds that.
* Clipping, end to end: a coefficient clip / norm relatively e off at one step moves that whole step by e, and a
  chaotic trajectory amplifies it (lm, 20 steps of SGD at lr 1: torch's norm errors of up to 6.7e-5 put its
  trained head/kernel 5.2 x its allowance off, 42 x the floor of ulp-moved starts alone, whose float32 NumPy
  norms are ~1e-7 off). So each ensemble retrain for a framework that reported its norms clips at step s as if
  its norm were r e_s off, relatively (at clip_norm / (1 + r e_s): the coefficient scaled as that norm error
  scales it, and the decision whether to clip moved with it): e_s the framework's measured relative norm error at
  step s (within the clip-norm allowance: a larger error is that check's failure, not floor), r a random sign per
  member and step (seeded). The floor so holds the perturbations the framework actually made, in either
  direction (lm: torch's head/kernel floor 8.2e-5 -> 3.5e-3, its trained weights within 0.12 of their allowance).
* Trained weights of two frameworks whose optimiser variants differ (torch's and Keras's Adam place
  epsilon differently): the sum of both sides' allowances plus the measured distance between the
  reference's two runs, one per variant (``trained_pair``); where both variants compute the same
  run, bit for bit (plain SGD at a float32-exact learning rate), the sum alone (``combined``).
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

import itertools
import math
from typing import Any

import numpy as np

from reference import optimizers
from verify.report import Allowance

EPS = {"float64": float(np.finfo(np.float64).eps), "float32": float(np.finfo(np.float32).eps)}
# significand bits, the implicit one included: a precision's unit roundoff is 2^-bits. "tf32" is the precision a
# float32 kernel rounds its operands to on a GPU with TF32 on (verify/device.py decides which kernels do).
SIGNIFICAND_BITS = {"float64": 53, "float32": 24, "tf32": 11}
ULP_FACTOR = {"float64": 1024.0, "float32": 64.0}
FLOOR_FACTOR = 8.0
ENSEMBLE = 8  # reference retrains from starts moved by one ulp: the end-of-training floor is their widest
STEP_RTOL_ULPS = 2.0  # a training step's new weight, stored in the framework's dtype: one rounding, twice over
UPDATE_ULPS = 8.0  # an optimiser's update of one weight rounds a handful of times (Keras's Adam: 7 operations)
STATE_ULPS = 2.0  # each optimiser state value per step: one update, stored
RULES = {
    "float64": "float64 vs reference: atol 1024 ulp of the tensor's largest |value| (for gradients: of the "
               "model's largest gradient), rtol 1024 ulp",
    "float32": "float32 vs reference: atol the larger of 64 ulp of the tensor's largest |value| (for gradients: "
               "of the model's largest gradient) and 8 x the measured float32 noise floor, rtol 64 ulp",
    "tf32": "float32 at TF32 vs reference: the float32 rule at TF32's unit roundoff 2^-11 (x 2^13): atol the "
            "larger of 64 x 2^-10 of the tensor's largest |value| (for gradients: of the model's largest gradient) "
            "and 8 x 2^13 x the measured float32 noise floor, rtol 64 x 2^-10",
    "accuracy": "accuracy: may move by the share of decisions the outputs' allowance could flip",
    "parameter": "parameters read back: exactly the weights the model was built from, rounded to its dtype",
    "pair": "framework vs framework: the sum of both frameworks' allowances against the reference",
    "trained": f"trained parameters and training losses vs the reference's SGD: the tensor rule of their dtype, "
               f"atol at least 8 x the measured training floor (the widest of {ENSEMBLE} reference retrains in the "
               f"framework's dtype from starts moved by one ulp; with clip_norm, each retrain's norm moved by the "
               f"framework's measured clip-norm error at each step, random sign)",
    "training step": "each optimiser step from the framework's own weights before it (and the reference's "
                     "optimiser state carried along them): atol the gradient rule of the dtype at that step "
                     "propagated through the update and the state to first order (for plain SGD: the learning rate "
                     "x the gradient atol) plus 8 ulp of the update, largest over the steps; rtol 2 ulp of the "
                     "weight (storing it); per-step losses: the tensor rule with that step's measured floor",
    "clip norm": "the global norm a framework clipped by at each step against the float64 norm of the reference's "
                 "gradients at its weights: the rounding bound of a sum of squares in its dtype in any order (n_max "
                 "+ k + 3 roundings, halved by the root) plus the gradient rule's 2-norm",
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


def unit_roundoff(precision: str) -> float:
    """The unit roundoff of ``precision`` (a dtype, or "tf32"): 2^-(significand bits)."""
    return 2.0 ** -SIGNIFICAND_BITS[precision]


def for_precision(ref: np.ndarray, dtype: str, precision: str, floor: float = 0.0, scale: float | None = None
                  ) -> Allowance:
    """Allowance for one tensor of a ``dtype`` framework whose kernels round at ``precision`` (TF32): the ``dtype``
    rule with eps and the measured ``floor`` scaled by unit_roundoff(precision) / unit_roundoff(dtype) (the module
    docstring derives it). ``precision`` equal to ``dtype`` is ``for_tensor``."""
    if precision == dtype:
        return for_tensor(ref, dtype, floor, scale)
    if dtype != "float32" or precision != "tf32":
        raise ValueError(f"no rule for {dtype} kernels rounding at {precision}: TF32 applies to float32 kernels only")
    ratio = unit_roundoff(precision) / unit_roundoff(dtype)
    k, eps = ULP_FACTOR[dtype], EPS[dtype] * ratio
    scale = _scale(ref) if scale is None else scale
    base, floor_at = k * eps * scale, floor * ratio
    if FLOOR_FACTOR * floor_at > base:
        return Allowance(FLOOR_FACTOR * floor_at, k * eps,
                         f"{dtype} at {precision}: {FLOOR_FACTOR:g} x {ratio:g} x measured float32 noise floor "
                         f"{floor:.3g}", RULES[precision])
    return Allowance(base, k * eps, f"{dtype} at {precision}: {k:g} x {eps:.3g} of the tensor's scale {scale:.3g} "
                                    f"(above {FLOOR_FACTOR:g} x {ratio:g} x noise floor {floor:.3g})",
                     RULES[precision])


def gradient_scale(gradients: dict[str, np.ndarray]) -> float | None:
    """The scale of every gradient's allowance: the largest |value| over all of the model's gradient tensors (the
    module docstring, "Gradients"); None without gradients."""
    return max((float(np.max(np.abs(v))) for v in gradients.values() if np.size(v)), default=None)


def for_tensor(ref: np.ndarray, dtype: str, floor: float = 0.0, scale: float | None = None,
               precision: str | None = None) -> Allowance:
    """Allowance for one tensor against the float64 reference; ``floor`` is the measured noise floor.

    ``scale`` overrides the tensor's own largest |value| (gradients: see the module docstring). ``precision``: what
    the framework's kernels round at where that is coarser than ``dtype`` (TF32 on a GPU: ``for_precision``).
    """
    if precision is not None and precision != dtype:
        return for_precision(ref, dtype, precision, floor, scale)
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


def for_trained(ref: np.ndarray, dtype: str, floor: float, precision: str | None = None) -> Allowance:
    """Trained weights or training losses against the reference's SGD; ``floor`` as measured (see above), scaled
    as ``for_precision`` scales it where the kernels round at a coarser ``precision``."""
    base = for_tensor(ref, dtype, precision=precision)
    if precision is not None and precision != dtype:
        floor *= unit_roundoff(precision) / unit_roundoff(dtype)
    if FLOOR_FACTOR * floor > base.atol:
        return Allowance(FLOOR_FACTOR * floor, base.rtol,
                         f"{dtype}: {FLOOR_FACTOR:g} x measured training floor {floor:.3g}", RULES["trained"])
    return Allowance(base.atol, base.rtol, f"{base.why} (above {FLOOR_FACTOR:g} x training floor {floor:.3g})",
                     RULES["trained"])


def for_step_losses(losses: np.ndarray, dtype: str, floors: np.ndarray, precision: str | None = None) -> Allowance:
    """Per-step training losses against the reference's losses at the framework's weights before each step."""
    worst = max((for_tensor(np.asarray(v), dtype, float(f), precision=precision) for v, f in zip(losses, floors)),
                key=lambda a: a.atol, default=for_tensor(np.asarray(losses), dtype, precision=precision))
    return Allowance(worst.atol, worst.rtol, f"the largest per-step allowance: {worst.why}", RULES["training step"])


def optimizer_step_error(name: str, variant: str, hyper: dict, lr: float, params: dict[str, np.ndarray],
                         grads: dict[str, np.ndarray], state: dict[str, Any], grad_atol: dict[str, float],
                         state_dev: dict[str, dict[str, np.ndarray]], dtype: str
                         ) -> tuple[dict[str, float], dict[str, dict[str, np.ndarray]]]:
    """How far a framework's weights after one optimiser step may lie from the reference's step from the same
    weights: per tensor, the largest over its elements; and the elementwise deviation of the state after the step.

    ``grads``, ``state``: the reference's gradients at the framework's weights and its state carried along them;
    ``grad_atol``: the gradient rule per tensor; ``state_dev``: the state's deviation bound before this step (zeros
    at the start), per slot and tensor, as this function returned it for the previous step."""
    h = optimizers.resolve(name, variant, **hyper)
    eps = EPS[dtype]
    g = dict(grads)
    a = {n: np.full(v.shape, grad_atol[n]) for n, v in grads.items()}
    if h["clip_norm"] is not None:
        # g * c(g): |d(g c)| <= c |dg| + |g c| |dc| / c, and |dc| / c <= ||dg|| / ||g|| (c = clip / ||g|| when active)
        norm = optimizers.global_norm(grads, variant)
        coef = optimizers.clip_coefficient(grads, h["clip_norm"], variant)
        a_norm = float(np.sqrt(sum(grad_atol[n] ** 2 * v.size for n, v in grads.items())))
        g = optimizers.clip(grads, variant, clip_norm=h["clip_norm"])
        a = {n: coef * a[n] + np.abs(g[n]) * (a_norm / norm if norm > 0 else 0.0) for n in g}
    if h["clip_value"] is not None:  # a clamp moves nothing by more than its argument moved: a stays
        g = optimizers.clip(g, variant, clip_value=h["clip_value"])
    rest = {k: v for k, v in hyper.items() if k not in optimizers.CLIP}
    slots = optimizers.SLOTS[name]
    center_p, center_s = optimizers.step(name, params, g, state, lr, variant, **rest)
    dev_p = {n: np.zeros(v.shape) for n, v in g.items()}
    dev_s = {slot: {n: np.zeros(v.shape) for n, v in g.items()} for slot in slots}
    for signs in itertools.product((-1.0, 1.0), repeat=1 + len(slots)):
        g_c = {n: g[n] + signs[0] * a[n] for n in g}
        s_c: dict[str, Any] = {"step": state["step"]}
        for sign, slot in zip(signs[1:], slots):
            moved = {n: state[slot][n] + sign * state_dev[slot][n] for n in state[slot]}
            # sums of squares cannot go negative in any framework: the box is cut there
            s_c[slot] = {n: np.maximum(v, 0.0) for n, v in moved.items()} if slot in optimizers.NONNEGATIVE_SLOTS \
                else moved
        with np.errstate(invalid="ignore", divide="ignore"):
            p_c, s_after = optimizers.step(name, params, g_c, s_c, lr, variant, **rest)
        for n in g:
            # fmax skips NaN: a corner outside the domain (a centred RMSprop variance pushed below zero) is no
            # state any framework can hold
            dev_p[n] = np.fmax(dev_p[n], np.abs(p_c[n] - center_p[n]))
            for slot in slots:
                dev_s[slot][n] = np.fmax(dev_s[slot][n], np.abs(s_after[slot][n] - center_s[slot][n]))
    bound = {n: float(np.max(dev_p[n] + UPDATE_ULPS * eps * np.abs(center_p[n] - params[n]), initial=0.0))
             for n in g}
    new_dev = {slot: {n: dev_s[slot][n] + STATE_ULPS * eps * np.abs(center_s[slot][n]) for n in g} for slot in slots}
    return bound, new_dev


def norm_summation_error(sizes: list[int], dtype: str) -> float:
    """How far, relatively, a global norm over tensors of ``sizes`` elements computed in ``dtype`` may lie from the
    exact norm of the same values, in any summation order (the module docstring derives it)."""
    u = EPS[dtype] / 2
    m = max(sizes, default=0) + len(sizes) + 3
    gamma = m * u / (1 - m * u)
    return gamma / (1 + math.sqrt(1 - gamma)) + u


def norm_deviation(grads: dict[str, np.ndarray], grad_atol: dict[str, float], grad_rtol: float
                   ) -> tuple[float, float]:
    """The global norm of ``grads`` (float64), and how far the norm of any gradients within the gradient rule
    (``|g_fw - g| <= atol + rtol |g|`` elementwise) may lie from it: the box's largest norm is that of
    ``|g| + a``, its smallest that of ``max(|g| - a, 0)``, so the bound is exact for the rule."""
    norm = float(np.sqrt(sum(float(np.sum(np.square(g))) for g in grads.values())))
    hi = lo = 0.0
    for n, g in grads.items():
        a = grad_atol[n] + grad_rtol * np.abs(g)
        hi += float(np.sum(np.square(np.abs(g) + a)))
        lo += float(np.sum(np.square(np.maximum(np.abs(g) - a, 0.0))))
    return norm, max(math.sqrt(hi) - norm, norm - math.sqrt(lo))


def for_clip_norm(sizes: list[int], deviations: list[float], dtype: str) -> Allowance:
    """The global norms a framework clipped by at each step against the float64 norm of the reference's gradients
    at its weights: the summation bound ``rel`` over tensors of ``sizes`` elements, on top of how far the
    framework's gradients may move the norm under the gradient rule (``deviations``: ``norm_deviation``'s at each
    step): |norm_fw - norm| <= (1 + rel) deviation + rel norm."""
    rel = norm_summation_error(sizes, dtype)
    atol = (1 + rel) * max(deviations, default=0.0)
    return Allowance(atol, rel, f"{dtype}: the sum of {max(sizes, default=0)} squares and {len(sizes)} tensors in "
                                f"any order ({rel:.2g} relative), plus the gradient rule's largest effect on the norm "
                                f"over the steps {atol:.3g}", RULES["clip norm"])


def summand_rounding(magnitude: np.ndarray, copies: int, dtype: str) -> float:
    """A tensor a framework trains as ``copies`` summands (torch's bias_ih + bias_hh) stores each on its own: 2 ulp
    of each summand's largest possible |value| (``magnitude``), which the rtol of their sum does not cover where
    they cancel."""
    return copies * STEP_RTOL_ULPS * EPS[dtype] * float(np.max(magnitude, initial=0.0))


def for_optimizer_step(bounds: list[float], dtype: str, optimizer: str) -> Allowance:
    """A tensor's weights after each optimiser step against the reference's step from the framework's weights and
    the reference's state before it; ``bounds``: ``optimizer_step_error``'s bound of this tensor at every step."""
    worst = max(bounds, default=0.0)
    return Allowance(worst, STEP_RTOL_ULPS * EPS[dtype],
                     f"{dtype}: the gradient rule propagated through {optimizer}'s update and state, plus "
                     f"{UPDATE_ULPS:g} ulp of the update: largest per-step bound {worst:.3g}; rtol "
                     f"{STEP_RTOL_ULPS:g} ulp (the stored weight)", RULES["training step"])
