"""``compare`` with training: each framework trains its own model, and the reference checks the result.

From one seeded initialisation every framework builds its model, trains it with its optimiser (the
model's own, plain SGD unless its setup names another; reference/optimizers.py models each in each
framework's own variant) on the same batches (the article's models with teacher forcing; layer stacks
with the dropout masks the reference drew, and their states carried across batches where the model
trains so), and hands back its weights after every step through its adapter.
Training is checked where it is decided, one step at a time: the reference takes each step from the
framework's own weights before it, with its optimiser state carried along those weights, so rounding
has nothing to amplify. The end-of-training weights are also checked against the reference's own
float64 run of the same optimiser and variant, with a floor measured on an ensemble of reference
retrains from starts moved by one ulp. Where gradients are clipped by their global norm, each framework reports
the norm it clipped by at every step: it is checked against the float64 norm of the reference's gradients at the
framework's weights, and its measured error is injected into that framework's ensemble (random sign per step), so
that the floor holds the perturbations the framework made. Then the reference recomputes outputs, states,
accuracy, loss and gradients on a held-out set from each framework's trained weights. The report
has, per framework: the weights read back after building, every training step, the trained weights
and training losses against the reference's run, and the held-out results against the reference;
then the frameworks against each other. verify/tolerance.py states every allowance.
"""
from __future__ import annotations

import dataclasses
import importlib
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from adapters import registry
from reference import optimizers, summed
from reference.params import init_params
from verify import device as devices
from verify import tolerance
from verify.compare import Results, compare_results, compare_steps, compare_tensor
from verify.report import Allowance, Check, Report


@dataclass(frozen=True)
class TrainSetup:
    """How a zoo model is trained: ``make_data(spec, rng, steps, batch_size, held_out)`` gives the
    training batches (one per step) and the held-out batch.

    ``optimizer`` (reference/optimizers.py's names) with ``hyper`` at ``lr`` is the model's own optimiser, used
    unless ``compare --optimizer`` names another. ``carry_state`` (layer stacks): batch s >= 1 starts from the
    final states the model reached on batch s - 1, with no gradient across batches (truncated backpropagation
    through time, as seeds/001 and seeds/004 train); ``batches[0]``'s initial state is the first start.
    ``init(spec, rng)``: the model's own initial weights (a tutorial's initialiser), else ``init_params``.
    ``one_bias``: torch's port trains one bias per simple-RNN or LSTM layer (bias_ih, with bias_hh frozen at zero),
    as a port of a one-bias original (TF1's BasicLSTMCell, Keras) must to train like it; else nn.LSTM's two
    (``build_options``)."""

    steps: int
    batch_size: int
    lr: float
    held_out: int
    make_data: Callable[..., tuple[list, Any]]
    carry_state: bool = False
    optimizer: str = "sgd"
    hyper: dict = field(default_factory=dict)
    init: Callable[..., dict] | None = None
    one_bias: bool = False


def build_options(setup: TrainSetup | None, framework: str) -> dict[str, Any]:
    """The keywords ``framework``'s adapter builds the model's port with (its ``build``, ``summed_tensors``)."""
    return {"one_bias": True} if setup is not None and setup.one_bias and framework == "torch" else {}


# each framework's optimisers follow its own rules where they differ (reference/optimizers.py)
OPTIMIZER_VARIANT = {"tensorflow": "keras", "torch": "torch"}
# learning rates for the article's models, chosen so that 100 steps of batch 32 train without diverging (README,
# "Optimisers"); plain SGD takes the model's own TrainSetup.lr
LEARNING_RATES = {"momentum": 0.1, "nesterov": 0.1, "adagrad": 0.1, "rmsprop": 0.01, "rmsprop_centered": 0.01,
                  "adam": 0.01, "adamw": 0.01}


@dataclass(frozen=True)
class Optimizer:
    """How every framework trains: the optimiser's name, learning rate and hyper-parameters (each framework's
    defaults for the rest)."""

    name: str
    lr: float
    hyper: dict

    @property
    def label(self) -> str:
        """The name in the checks' ``against`` ("reference SGD step" for plain SGD, as before optimisers)."""
        return "SGD" if self.name == "sgd" else self.name


def optimizer_for(setup: TrainSetup, name: str | None = None, hyper: dict | None = None, lr: float | None = None
                  ) -> Optimizer:
    """The optimiser ``name`` with ``lr`` (default: the setup's for SGD, ``LEARNING_RATES`` otherwise); without a
    name the model's own (``setup.optimizer`` with ``setup.hyper`` at ``setup.lr``). ValueError (one line) for an
    unknown name or hyper-parameter."""
    if name is None:
        name, hyper, lr = setup.optimizer, setup.hyper if hyper is None else hyper, setup.lr if lr is None else lr
    if name not in optimizers.NAMES:
        raise ValueError(f"unknown optimiser {name!r}; expected one of: {', '.join(optimizers.NAMES)}")
    for variant in optimizers.VARIANTS:
        optimizers.resolve(name, variant, **(hyper or {}))
    rate = lr if lr is not None else setup.lr if name == "sgd" else LEARNING_RATES[name]
    return Optimizer(name, float(rate), dict(hyper or {}))


def _cast(params: dict, dtype: str) -> dict:
    return {k: v.astype(dtype) for k, v in params.items()}


def _floor(low: np.ndarray | None, ref: np.ndarray) -> float:
    return 0.0 if low is None else float(np.max(np.abs(np.asarray(low, np.float64) - ref)))


def _ulp_moved(params: dict, seed: int, member: int) -> dict:
    """Every weight moved by one ulp of its own dtype, up or down at random (seeded per ensemble member)."""
    rng = np.random.default_rng([seed, member, 2**32 - 1])
    return {k: (v + rng.choice([-1.0, 1.0], size=v.shape) * np.spacing(v)).astype(v.dtype) for k, v in params.items()}


def _train_kwargs(carry: bool, copies: dict[str, int]) -> dict[str, Any]:
    """``family.optimizer_train``'s keywords beyond the seq2seq family's, which takes neither."""
    return {**({"carry_state": True} if carry else {}), **({"copies": copies} if copies else {})}


def _clip_signs(seed: int, member: int, steps: int) -> np.ndarray:
    """The random sign of each step's injected clip-norm error for one ensemble member (seeded, apart from the
    member's start, which ``_ulp_moved`` draws)."""
    return np.random.default_rng([seed, member, 2**32 - 2]).choice([-1.0, 1.0], size=steps)


def _retrain(family: Any, spec: Any, start: dict, batches: list, opt: Optimizer, variant: str, kw: dict[str, Any],
             norm_errors: list[float] | None = None, signs: np.ndarray | None = None,
             step_devs: list[dict[str, float]] | None = None, rng: np.random.Generator | None = None
             ) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The reference's run of ``opt`` from ``start`` in its dtype (``family.optimizer_train``). With ``norm_errors``,
    step s clips as if its global norm were ``signs[s] * norm_errors[s]`` off, relatively: at ``clip_norm / (1 +
    signs[s] * norm_errors[s])``, which scales the coefficient clip / norm as that norm error would and moves the
    decision whether to clip with it (tolerance.py: "Clipping, end to end"). With ``step_devs``, every weight after
    step s moves by ``step_devs[s]`` of its tensor, a random sign per element (``rng``): the framework's measured
    deviation from the reference's step there (``_step_checks``)."""
    if norm_errors is None and step_devs is None:
        return family.optimizer_train(spec, start, batches, opt.lr, opt.name, variant, opt.hyper, **kw)
    carry, copies = kw.get("carry_state", False), kw.get("copies", {})
    clip_norm = optimizers.resolve(opt.name, variant, **opt.hyper)["clip_norm"]
    p = dict(start)
    state = summed.init(opt.name, p, variant, copies, **opt.hyper)
    losses, carried = [], None
    for s, batch in enumerate(batches):
        loss, grads, finals = _step_gradients(family, spec, p, batch, carried, carry)
        carried = finals if carry else None
        hyper = opt.hyper if norm_errors is None else \
            {**opt.hyper, "clip_norm": clip_norm / (1.0 + float(signs[s]) * norm_errors[s])}
        p, state = summed.step(opt.name, p, grads, state, opt.lr, variant, copies, **hyper)
        if step_devs is not None:
            p = {n: v + rng.choice([-1.0, 1.0], size=v.shape).astype(v.dtype) * v.dtype.type(step_devs[s].get(n, 0.0))
                 for n, v in p.items()}
        losses.append(loss)
    return p, np.asarray(losses)


def _ensemble_floor(family: Any, spec: Any, params: dict, batches64: list, opt: Optimizer, variant: str, dtype: str,
                    seed: int, ref_params: dict, ref_losses: np.ndarray, kw: dict[str, Any],
                    norm_errors: list[float] | None = None, step_devs: list[dict[str, float]] | None = None
                    ) -> tuple[dict[str, float], float]:
    """The end-of-training floor: how far ``tolerance.ENSEMBLE`` reference retrains in ``dtype``, each from a
    start moved by one ulp, land from the float64 trajectory (the widest member, per tensor). ``kw``: carried state
    and summed tensors, as the float64 run had them. ``norm_errors``: the framework's relative clip-norm error at
    each step (``_step_checks``), injected into every member with a random sign per step (``_retrain``)."""
    low = [b.astype(np.dtype(dtype)) for b in batches64]
    floors = dict.fromkeys(ref_params, 0.0)
    loss_floor = 0.0
    for member in range(tolerance.ENSEMBLE):
        signs = None if norm_errors is None else _clip_signs(seed, member, len(low))
        trained, losses = _retrain(family, spec, _ulp_moved(_cast(params, dtype), seed, member), low, opt, variant,
                                   kw, norm_errors, signs, step_devs, np.random.default_rng([seed, member, 2**32 - 3]))
        for n, v in ref_params.items():
            floors[n] = max(floors[n], _floor(trained[n], v))
        loss_floor = max(loss_floor, _floor(losses, ref_losses))
    return floors, loss_floor


def _step_gradients(family: Any, spec: Any, params: dict, batch: Any, carried: dict | None, carry: bool
                    ) -> tuple[float, dict, dict | None]:
    """(loss, parameter gradients, final states when ``carry``) at ``params`` on ``batch``, started from the
    ``carried`` states when given."""
    if carried is not None:
        batch = family.starting_from(batch, carried)
    if carry:
        return family.gradients_and_states(spec, params, batch)
    loss, grads = family.gradients(spec, params, batch)
    return loss, grads, None


def _held(params: dict[str, np.ndarray], dtype: str) -> dict[str, np.ndarray]:
    """Weights as held between steps: in the framework's dtype, which holds them exactly."""
    return {n: np.asarray(v, dtype) for n, v in params.items()}


def _f64(params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {n: np.asarray(v, np.float64) for n, v in params.items()}


def _step_checks(framework: str, family: Any, spec: Any, snapshots: list[dict], losses: np.ndarray,
                 batches64: list, opt: Optimizer, variant: str, dtype: str, gates: Callable, carry: bool = False,
                 copies: dict[str, int] | None = None, clip_norms: list[float] | None = None,
                 precision: str | None = None, step_devs: list[dict[str, float]] | None = None
                 ) -> tuple[list[Check], list[float], list[float] | None]:
    """Every optimiser step of one framework, checked where it is decided: the reference takes the step from the
    framework's own weights before it (``snapshots[s]``), with its own optimiser state updated at every step by its
    gradient at those weights (so it follows the framework's state up to rounding), and is compared with the
    framework's weights after it (``snapshots[s + 1]``). One check per tensor over all steps; its first bad step is
    the training step. Also the per-step gap: the largest share of its allowance any weight uses after each step.

    ``carry``: batch s >= 1 starts from the final states the reference reaches on batch s - 1 from the framework's
    weights before step s - 1: a chain of forward passes, each from the framework's own weights (so nothing of the
    framework's training is amplified), whose float32 floor is measured along the same chain run in float32.
    ``copies``: tensors the framework trains as a sum of several (reference/summed.py).
    ``clip_norms``: the global norm the framework clipped by at each step, checked against the float64 norm of the
    reference's gradients there (one check, "clip norm"); its relative error at each step, within that check's
    allowance, is returned for the end-of-training floor (None without norms).
    ``precision``: what the framework's kernels round at where coarser than ``dtype`` (TF32 on a GPU): the gradient
    rule and the losses' rule at it (the update and the stored weight are elementwise, in ``dtype``).
    ``step_devs``, when given, receives per step the framework's largest deviation from the reference's step, per
    tensor, as far as that step's allowance admits it (the end-of-training floor injects it: ``_retrain``)."""
    names = list(snapshots[0])
    copies = copies or {}
    got: dict[str, list] = {n: [] for n in names}
    want: dict[str, list] = {n: [] for n in names}
    bounds: dict[str, list] = {n: [] for n in names}
    ref_losses, loss_floors = [], []
    first = _f64(snapshots[0])
    state = summed.init(opt.name, first, variant, copies, **opt.hyper)
    state_dev = {slot: {n: np.zeros(v.shape) for n, v in summed.expand(first, copies).items()}
                 for slot in optimizers.SLOTS[opt.name]}
    # how large a summand of a summed tensor can be, where they cancel and their own rounding is not within the rtol
    # of their sum: two summands are (sum +- difference) / 2, and their difference starts at most as large as the
    # sum (halves, or the whole and zero: adapters/tables.py) and does not grow (each takes the same update; a
    # decay shrinks it)
    start = {n: np.abs(first[n]) for n in copies}
    carried = carried_low = None
    # the float64 global norm at each step, and how far the gradient rule lets a framework's gradients move it
    norms64, norm_devs = [], []
    grad_rtol = tolerance.for_tensor(np.zeros(1), dtype, precision=precision).rtol
    for s, batch in enumerate(batches64):
        before = _f64(snapshots[s])
        loss, grads, carried_next = _step_gradients(family, spec, before, batch, carried, carry)
        low_loss, low_grads = loss, grads  # float64: no floor is measured, the float64 rule has none
        if dtype != "float64":
            low_loss, low_grads, carried_low = _step_gradients(family, spec, _cast(before, dtype),
                                                               batch.astype(np.dtype(dtype)), carried_low, carry)
        carried = carried_next
        scale = max(float(np.max(np.abs(g))) for g in grads.values())
        grad_atol = {n: tolerance.for_tensor(grads[n], dtype, _floor(low_grads[n], grads[n]), scale, precision).atol
                     for n in names}
        if clip_norms is not None:
            norm, dev = tolerance.norm_deviation(summed.expand_grads(grads, copies),  # torch counts each summand
                                                 summed.expand_grads(grad_atol, copies), grad_rtol)
            norms64.append(norm)
            norm_devs.append(dev)
        bound, state_dev = tolerance.optimizer_step_error(
            opt.name, variant, opt.hyper, opt.lr, summed.expand(before, copies), summed.expand_grads(grads, copies),
            state, summed.expand_grads(grad_atol, copies), state_dev, dtype)
        bound = summed.collapse(bound, copies)  # each summand's deviation adds to the sum's
        after, state = summed.step(opt.name, before, grads, state, opt.lr, variant, copies, **opt.hyper)
        for n in names:
            if n in copies:
                bound[n] += tolerance.summand_rounding((np.abs(after[n]) + start[n]) / 2, copies[n], dtype)
            bounds[n].append(bound[n])
            got[n].append(snapshots[s + 1][n])
            want[n].append(after[n])
        if step_devs is not None:
            rtol = tolerance.for_optimizer_step([0.0], dtype, opt.name).rtol
            step_devs.append({n: min(float(np.max(np.abs(np.asarray(snapshots[s + 1][n], np.float64) - after[n]),
                                                  initial=0.0)),
                                     bound[n] + rtol * float(np.max(np.abs(after[n]), initial=0.0)))
                              for n in names})
        ref_losses.append(float(loss))
        loss_floors.append(abs(float(low_loss) - float(loss)))
    against = f"reference {opt.label} step"
    allowed = {n: tolerance.for_optimizer_step(bounds[n], dtype, opt.name) for n in names}
    checks = [compare_steps(framework, against, "training step", n, got[n], want[n], allowed[n], dtype,
                            gates("training step", n))
              for n in names]
    ref_l = np.asarray(ref_losses)
    checks.append(compare_tensor(framework, against, "training step", "loss", losses, ref_l,
                                 tolerance.for_step_losses(ref_l, dtype, np.asarray(loss_floors), precision), dtype,
                                 0))
    gap = [max(_share(got[n][s], want[n][s], allowed[n]) for n in names) for s in range(len(batches64))]
    norm_errors = None
    if clip_norms is not None:
        sizes = [g.size for g in summed.expand_grads(snapshots[0], copies).values()]
        allow = tolerance.for_clip_norm(sizes, norm_devs, dtype)
        got_n, want_n = np.asarray(clip_norms, np.float64), np.asarray(norms64)
        checks.append(compare_tensor(framework, against, "clip norm", "global norm", got_n, want_n, allow, dtype, 0))
        if got_n.shape == want_n.shape:  # else the check above fails on the shape, and no error is measured
            # the framework's relative norm error, as far as the policy admits it (a larger one fails the check
            # above); zero where the gradients are all zero (nothing to clip)
            with np.errstate(divide="ignore", invalid="ignore"):
                rel = np.where(want_n > 0, (got_n - want_n) / want_n, 0.0)
                limit = np.where(want_n > 0, (allow.atol + allow.rtol * want_n) / want_n, 0.0)
            norm_errors = [float(e) for e in np.clip(np.nan_to_num(rel), -limit, limit)]
    return checks, gap, norm_errors


DIVERGED = 1e3  # a training loss this many times its first value (or not finite) is called diverged


def divergence_note(framework: str, losses: np.ndarray) -> str | None:
    """A note when the framework's training loss exploded: its trained weights may make the held-out results
    ill-conditioned (README, "Known false alarms under --optimizer in float64"), so a mismatch there is read with
    the per-step checks, which are taken before anything could amplify."""
    losses = np.asarray(losses, np.float64)
    if losses.size < 2:
        return None
    first, last = abs(float(losses[0])), float(np.max(np.abs(losses)))
    if last <= DIVERGED * max(first, np.finfo(np.float64).tiny):  # False for inf and nan too
        return None
    return (f"{framework}: training diverged (loss {first:.3g} at step 0, up to {last:.3g}): results on the trained "
            f"weights may be ill-conditioned; a port bug shows in the per-step checks first")


def _share(x: np.ndarray, ref: np.ndarray, allowance: Allowance) -> float:
    """The largest share of ``allowance`` any element of ``x`` uses (inf where the allowance is zero and used)."""
    diff = np.abs(np.asarray(x, np.float64) - ref)
    with np.errstate(divide="ignore", invalid="ignore"):
        shares = np.where(diff == 0, 0.0, diff / (allowance.atol + allowance.rtol * np.abs(ref)))
    return float(np.max(shares, initial=0.0))


GAP_VALUES = 12  # the per-step gap note shows at most this many values (buckets of steps, their largest)


def gap_note(framework: str, gap: list[float]) -> str:
    """One line: the per-step gap of a framework's training, bucketed by their largest to at most ``GAP_VALUES``
    values, so that one sees whether it stays at rounding level (well below 1) or grows like a bug."""
    size = max(1, math.ceil(len(gap) / GAP_VALUES))
    values = [max(gap[i:i + size]) for i in range(0, len(gap), size)]
    how = "" if size == 1 else f", largest of each {size} steps"
    return (f"{framework}: per-step gap (largest error / allowance over the weights, steps 0-{len(gap) - 1}{how}): "
            + " ".join(f"{v:.2g}" for v in values))


def _largest(v: np.ndarray) -> float:
    return float(np.max(np.abs(v))) if np.size(v) else 0.0


def _without(results: Results, quantity: str, name: str) -> Results:
    return {q: {n: v for n, v in t.items() if (q, n) != (quantity, name)} for q, t in results.items()}


def _decisions(framework: str, decoded: np.ndarray, ref: Results, allow_pred: Allowance, dtype: str
               ) -> tuple[Check, str | None]:
    """The symbols a framework fed back against the reference's argmax along the same path."""
    pred = ref["output"]["prediction"]
    ref_dec = np.argmax(pred, axis=-1)
    top2 = np.sort(pred, axis=-1)[..., -2:]
    margins = top2[..., 1] - top2[..., 0]
    slack = allow_pred.atol + allow_pred.rtol * float(np.max(np.abs(pred)))
    near = margins <= 2 * slack
    differ = decoded.astype(np.int64) != ref_dec
    bad = differ & ~near
    base = compare_tensor(framework, "reference", "output", "decoded", decoded, ref_dec.astype(np.float64),
                          Allowance(0.0, 0.0, ""), dtype, 1)
    first = int(np.argmax(bad.any(axis=0))) if bad.any() else None
    check = dataclasses.replace(base, n_bad=int(bad.sum()), ok=not bad.any(), first_bad_step=first,
                                allowed=tolerance.for_decisions(int(near.sum()), near.size, slack))
    note = None
    if differ.any():
        b, k = (int(i) for i in np.argwhere(differ)[0])
        note = (f"{framework}: greedy decoding diverged from the reference's argmax in {int(differ.sum())} of "
                f"{differ.size} decisions ({int(bad.sum())} not near a tie); first at sample {b}, output step {k}, "
                f"top-2 margin {margins[b, k]:.3g}; the reference recomputed along {framework}'s symbols")
    return check, note


# outputs in processing order: the encoder runs before the decoder (whose step k emits symbol k + 1)
_PROCESSING_ORDER = ("encoder", "forward", "backward", "decoder", "logits", "prediction")


def _processing_order(spec: Any) -> tuple[str, ...]:
    """Output names in the order they are computed: a layer stack's recurrent layers, then its prediction."""
    layers = getattr(spec, "recurrent_layers", None)
    return _PROCESSING_ORDER if layers is None else tuple(l.name for l in layers) + ("prediction",)


def _first_divergence(spec: Any, frameworks: tuple[str, ...], checks: list[Check]) -> list[str]:
    """One line per framework whose held-out outputs diverge: the first tensor and step, in processing order."""
    lines = []
    for fw in frameworks:
        bad = {c.name: c for c in checks if c.framework == fw and c.against == "reference" and c.quantity == "output"
               and not c.ok and c.first_bad_step is not None}
        for name in _processing_order(spec):
            if name in bad:
                step = bad[name].first_bad_step
                extra = f" (emits output symbol {step + 1})" if name == "decoder" and not hasattr(spec, "layers") \
                    else ""
                lines.append(f"{fw}: first divergent step on the held-out set: output {name} step {step}{extra}")
                break
    return lines


def gates_of(spec: Any) -> Callable[[str, str], tuple[str, ...]]:
    """The gate blocks of each gate-stacked tensor of a trained model, by (quantity, name)."""
    family = importlib.import_module(spec.family)

    def gates(q: str, n: str) -> tuple[str, ...]:
        return family.gate_blocks(spec, n) if q in ("gradient", "teacher-forced gradient", "parameter",
                                                    "trained parameter", "training step") else ()
    return gates


def _teacher_forced(spec: Any) -> bool:
    """Whether the held-out set is also run under teacher forcing: the training objective on the held-out set,
    where the decoder reads the previous target (greedy decoding's fed-back one-hot carries no gradient; this
    does not either, but every step's input is then the same on both sides by construction)."""
    return getattr(spec, "decoding", None) == "greedy" and spec.kind != "bidirectional"


def held_out_run(spec: Any, adapter: Any, model: Any, test: Any, dtype: str) -> Results:
    """One framework's results on the held-out set: the spec's decoding, and where the decoder is greedy also
    the teacher-forced loss and gradients (as ``teacher-forced loss`` / ``teacher-forced gradient``)."""
    from verify.engine import seen_by
    results = adapter.run(model, spec, test, dtype)
    if _teacher_forced(spec):
        t_res = adapter.run(model, dataclasses.replace(spec, decoding="teacher"), seen_by(test, dtype), dtype)
        for q in ("loss", "gradient"):
            results[f"teacher-forced {q}"] = t_res[q]
    return results


def held_out_reference(spec: Any, trained: dict, test: Any, decoded: np.ndarray | None, dtype: str,
                       precision: str | None = None) -> tuple[Results, dict[tuple[str, str], Allowance]]:
    """The reference on the held-out set from ``trained`` weights, along the symbols a framework ``decoded``
    (greedy decoding), and the allowance of each tensor (kernels rounding at ``precision`` where coarser than
    ``dtype``); with teacher-forced loss and gradients where ``held_out_run`` has them."""
    from verify.engine import seen_by
    family = importlib.import_module(spec.family)
    path = test
    if decoded is not None and getattr(spec, "decoding", None) == "greedy":
        path = test.with_fed_back(decoded[:, :-1].astype(np.int64))
    path64 = seen_by(path, dtype)
    ref = family.evaluate(spec, trained, path64)
    low = None  # the noise floor: the same recomputation rounded to dtype
    if dtype != "float64":
        low = family.evaluate(spec, _cast(trained, dtype), path64.astype(np.dtype(dtype)))
    allow: dict[tuple[str, str], Allowance] = {}
    scales = {"gradient": tolerance.gradient_scale(ref.get("gradient", {}))}  # as compare's (engine.py)
    for q, tensors in ref.items():
        for n, v in tensors.items():
            if q != "accuracy" and n != "decoded":
                allow[(q, n)] = tolerance.for_tensor(v, dtype, _floor(None if low is None else low[q][n], v),
                                                     scales.get(q), precision)
    allow[("accuracy", "accuracy")] = tolerance.for_accuracy(
        family.decision_margins(spec, ref, path64), allow[("output", "prediction")],
        float(np.max(np.abs(ref["output"]["prediction"]))))
    if _teacher_forced(spec):
        test64 = seen_by(test, dtype)
        t_ref = family.evaluate(spec, trained, test64, "teacher")
        t_low = family.evaluate(spec, _cast(trained, dtype), test64.astype(np.dtype(dtype)), "teacher") \
            if dtype != "float64" else None
        t_scale = tolerance.gradient_scale(t_ref["gradient"])
        for q in ("loss", "gradient"):
            tq = f"teacher-forced {q}"
            ref[tq] = t_ref[q]
            for n, v in t_ref[q].items():
                allow[(tq, n)] = tolerance.for_tensor(v, dtype, _floor(None if t_low is None else t_low[q][n], v),
                                                      t_scale if q == "gradient" else None, precision)
    return ref, allow


def held_out_checks(framework: str, spec: Any, results: Results, ref: Results, allow: dict, dtype: str
                    ) -> tuple[list[Check], list[str]]:
    """A framework's held-out results against the reference: its greedy decisions (near ties may differ), then
    every tensor; and the note on diverging decisions, if any."""
    family = importlib.import_module(spec.family)
    checks: list[Check] = []
    notes: list[str] = []
    decoded = results["output"].get("decoded")
    if decoded is not None:
        check, note = _decisions(framework, decoded, ref, allow[("output", "prediction")], dtype)
        checks.append(check)
        if note:
            notes.append(note)
    checks += compare_results(framework, "reference", results, _without(ref, "output", "decoded"),
                              lambda q, n: allow[(q, n)], dtype, lambda q, n: family.time_axis(spec, q, n),
                              gates_of(spec))
    return checks, notes


@dataclass
class _ReferenceRun:
    """The reference's float64 run of one optimiser variant, and the end-of-training allowances from its ensemble."""

    params: dict
    losses: np.ndarray
    allow_trained: dict


@dataclass
class _Side:
    framework: str
    trained: dict
    losses: np.ndarray
    results: Results
    ref: Results
    allow: dict
    reference: _ReferenceRun


def _reference_runs(family: Any, spec: Any, params: dict, batches64: list, opt: Optimizer,
                    plans: dict[str, tuple[str, dict[str, int]]], dtype: str, seed: int, carry: bool,
                    norm_errors: dict[str, list[float] | None] | None = None,
                    precisions: dict[str, str] | None = None,
                    step_devs: dict[str, list | None] | None = None) -> dict[str, _ReferenceRun]:
    """Per framework, by its plan (optimiser variant, summed tensors): the reference's float64 run and its ensemble
    floor, with the framework's measured clip-norm errors (``norm_errors``, None where it reported no norms)
    injected into the ensemble. Plans whose float64 runs agree bit for bit (plain SGD at a float32-exact learning
    rate, no summed tensors) share one run (the same ``params``), and its ensemble is not repeated unless their
    injected norm errors differ. ``precisions``: what each framework's kernels round at, where coarser than
    ``dtype`` (its end-of-training allowances scale with it; a run is shared only at the same precision)."""
    errors = norm_errors or {}
    precisions = precisions or {}
    devs = step_devs or {}
    runs: dict[str, _ReferenceRun] = {}
    for fw, (variant, copies) in plans.items():
        kw = _train_kwargs(carry, copies)
        ref_params, ref_losses = family.optimizer_train(spec, params, batches64, opt.lr, opt.name, variant, opt.hyper,
                                                        **kw)
        same = next((f for f, r in runs.items() if np.array_equal(r.losses, ref_losses)
                     and all(np.array_equal(r.params[n], v) for n, v in ref_params.items())), None)
        if same is not None:
            if errors.get(same) == errors.get(fw) and precisions.get(same) == precisions.get(fw) \
                    and devs.get(same) is None and devs.get(fw) is None:
                runs[fw] = runs[same]
                continue
            ref_params, ref_losses = runs[same].params, runs[same].losses
        floors, loss_floor = _ensemble_floor(family, spec, params, batches64, opt, variant, dtype, seed, ref_params,
                                             ref_losses, kw, errors.get(fw), devs.get(fw))
        allow_trained = {n: tolerance.for_trained(v, dtype, floors[n], precisions.get(fw))
                         for n, v in ref_params.items()}
        allow_trained["training"] = tolerance.for_trained(ref_losses, dtype, loss_floor, precisions.get(fw))
        runs[fw] = _ReferenceRun(ref_params, ref_losses, allow_trained)
    return runs


def _trained_pair_allowance(a: _Side, b: _Side, name: str) -> Allowance:
    """Two frameworks' trained weights (or training losses, ``name`` "training"): both sides' allowances, plus the
    distance between the reference's runs of their two optimiser variants where those differ."""
    if a.reference.params is b.reference.params:  # one float64 run (each side's floor its own)
        return tolerance.combined(a.reference.allow_trained[name], b.reference.allow_trained[name])
    ra, rb = (r.losses if name == "training" else r.params[name] for r in (a.reference, b.reference))
    return tolerance.trained_pair(a.reference.allow_trained[name], b.reference.allow_trained[name],
                                  float(np.max(np.abs(ra - rb))), _largest(ra), _largest(rb))


def _training_note(spec: Any, setup: TrainSetup, batches: list, test: Any, n_steps: int, what: str,
                   opt: Optimizer) -> str:
    """What the training was: steps, optimiser, batch, and how each batch starts and is fed."""
    how = ["teacher forcing"] if getattr(spec, "decoding", None) else []
    if setup.carry_state:
        how.append("state carried across batches (truncated backpropagation through time)")
    if any(getattr(b, "dropout_masks", None) for b in batches):
        how.append("dropout masks drawn by the reference and given to every framework")
    held = f"held-out set: {test.inputs.shape[0]} examples"
    if getattr(spec, "decoding", None):
        held += f", decoding {spec.decoding}"
    elif any(getattr(layer, "kind", "") == "Dropout" for layer in getattr(spec, "layers", ())):
        held += " (inference: no dropout)"
    return (f"training: {n_steps} {what} steps (lr {opt.lr:g}, batch {setup.batch_size}"
            f"{''.join(', ' + h for h in how)}) from one seeded start; {held}")


def _summed_note(framework: str, copies: dict[str, int], optimizer: str) -> str:
    names = sorted(copies)
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    twice = " (under plain SGD the sum moves twice as far as one bias at the same learning rate)" \
        if optimizer == "sgd" else ""
    return (f"{framework} trains {shown} as bias_ih + bias_hh: each summand receives the sum's whole gradient and "
            f"is stepped on its own{twice}; the reference's run for {framework} steps each summand "
            f"(reference/summed.py)")


def _clip_note(framework: str, errors: list[float], hyper: dict) -> str:
    """What the framework's clip norms did to its end-of-training floor."""
    worst = int(np.argmax(np.abs(errors)))
    return (f"{framework}: clip_norm {hyper['clip_norm']:g}: the global norm it clipped by is checked at every step "
            f"(clip norm); its end-of-training floor includes its measured clip-norm error: each of the "
            f"{tolerance.ENSEMBLE} retrains clips at step s as if its norm were off by {framework}'s relative error "
            f"at step s, random sign (largest {abs(errors[worst]):.2g} at step {worst})")


def _variant_of(framework: str) -> str:
    if framework not in OPTIMIZER_VARIANT:
        raise ValueError(f"no optimiser variant for framework {framework!r}; expected one of: "
                         f"{', '.join(OPTIMIZER_VARIANT)}")
    return OPTIMIZER_VARIANT[framework]


def compare_trained(name: str, spec: Any, setup: TrainSetup, frameworks: tuple[str, ...], dtype: str, seed: int,
                    progress: Callable[[str], None] = lambda s: None, variant: str = "",
                    steps: int | None = None, optimizer: str | None = None, hyper: dict | None = None,
                    lr: float | None = None, trained_out: dict | None = None, device: str = "cpu") -> Report:
    """Build, train, extract and verify every framework; ``variant`` builds a deliberately broken model.

    ``optimizer`` (reference/optimizers.py's names) with ``hyper`` trains every framework, each with its own
    variant; ``lr`` defaults to the setup's for plain SGD and to ``LEARNING_RATES`` for the others. Without
    ``optimizer``, the model's own (``setup.optimizer``, ``setup.hyper``, ``setup.lr``). ``trained_out``, when
    given, receives every side's trained weights: each framework's, and the reference's float64 run under each
    framework's rules (``reference, <framework>'s rules``). ``device`` "cuda": torch (and Keras, where TensorFlow
    sees a GPU) builds, trains and runs on the GPU, checked at the precision its kernels round at there
    (verify/device.py)."""
    from verify.engine import seen_by, versions  # here: the engine dispatches to this module

    family = importlib.import_module(spec.family)
    opt = optimizer_for(setup, optimizer, hyper, lr)
    variants = {fw: _variant_of(fw) for fw in frameworks}
    carry = setup.carry_state
    if carry and not hasattr(family, "gradients_and_states"):
        raise ValueError(f"carry_state: model {name!r} ({spec.family}) has no states to carry across batches")

    gates = gates_of(spec)
    adapters = {fw: registry.get(fw, spec) for fw in frameworks}
    copies = {fw: getattr(adapters[fw], "summed_tensors", lambda spec, **kw: {})(spec, **build_options(setup, fw))
              for fw in frameworks}
    for fw in frameworks:
        summed.check(opt.name, variants[fw], copies[fw], **opt.hyper)
    rng = np.random.default_rng(seed)
    params = setup.init(spec, rng) if setup.init is not None else init_params(spec, rng)
    n_steps = setup.steps if steps is None else steps
    batches, test = setup.make_data(spec, rng, n_steps, setup.batch_size, setup.held_out)
    timings: dict[str, float] = {}
    checks: list[Check] = []
    what = "plain SGD" if opt.name == "sgd" else opt.name
    notes = [spec.description, _training_note(spec, setup, batches, test, n_steps, what, opt),
             "optimiser: " + "; ".join(f"{fw} {optimizers.describe(opt.name, variants[fw], opt.lr, **opt.hyper)}"
                                       for fw in frameworks)]
    notes += [_summed_note(fw, copies[fw], opt.name) for fw in frameworks if copies[fw]]
    notes += [f"{fw}: one bias per layer, as the original's: bias_hh frozen at zero (requires_grad False), the bias "
              f"trained in bias_ih" for fw in frameworks if build_options(setup, fw).get("one_bias")]

    t = time.perf_counter()
    progress(f"importing {', '.join(frameworks)}")
    vers = versions(spec, frameworks)
    devices.check(device, frameworks)
    placed = devices.plan(device, frameworks, dtype, spec)
    precisions = {fw: p.precision for fw, p in placed.items()}
    notes[1:1] = devices.notes(device, placed, dtype)
    timings["imports"] = time.perf_counter() - t

    t = time.perf_counter()
    models = {}
    exact = tolerance.for_parameters(dtype)
    for fw in frameworks:
        progress(f"{fw}: building the model ({dtype}) and reading it back")
        where = {**({"variant": variant} if variant else {}), **build_options(setup, fw),
                 **devices.build_kwargs(fw, "cuda" if placed[fw].on_gpu else "cpu")}
        with devices.scope(fw, placed[fw]):
            models[fw] = adapters[fw].build(spec, params, dtype, **where)
        back = adapters[fw].extract(models[fw])
        for pname, value in params.items():
            got = back.get(pname, np.full_like(value, np.nan))
            checks.append(compare_tensor(fw, "built weights", "parameter", pname, got,
                                         value.astype(dtype).astype(np.float64), exact, dtype, None,
                                         gates("parameter", pname)))
    timings["building"] = time.perf_counter() - t

    t = time.perf_counter()
    batches64 = [seen_by(b, dtype) for b in batches]
    notes.append(f"training checked step by step: before each step the reference starts from the framework's own "
                 f"weights; end-of-training floor: the widest of {tolerance.ENSEMBLE} reference retrains in {dtype} "
                 f"from starts moved by one ulp")
    runs_notes_at = len(notes)  # the reference's runs come after the frameworks' (their clip norms go into the floor)
    clipping = optimizers.resolve(opt.name, "torch", **opt.hyper)["clip_norm"] is not None
    fw_losses, clip_norms = {}, {}
    norm_errors: dict[str, list[float] | None] = {}
    step_devs: dict[str, list | None] = {}
    timings["checking steps"] = 0.0
    for fw in frameworks:
        t1 = time.perf_counter()
        progress(f"{fw}: training {n_steps} steps")
        # every step's weights, held in the framework's dtype (float32 holds a float32 model's weights exactly):
        # a long run (--reproduce) keeps one framework's steps at a time, checked and dropped before the next trains
        snaps = [_held(adapters[fw].extract(models[fw]), dtype)]
        norms: list[float] = []
        with devices.scope(fw, placed[fw]):
            fw_losses[fw] = np.asarray(adapters[fw].train(
                models[fw], spec, batches, opt.lr, dtype, progress,
                after_step=lambda i, fw=fw, snaps=snaps: snaps.append(_held(adapters[fw].extract(models[fw]), dtype)),
                optimizer=opt.name, hyper=opt.hyper, **({"carry_state": True} if carry else {}),
                **({"clip_norms": norms} if clipping else {})))
        clip_norms[fw] = norms if norms else None  # an adapter that reports no norms is checked as before
        timings[f"training: {fw}"] = time.perf_counter() - t1
        t1 = time.perf_counter()
        progress(f"{fw}: checking each of its {n_steps} training steps from its own weights")
        # float64: the ensemble's members round as the reference does, step for step, so the framework's own
        # per-step rounding (which an adaptive optimiser can amplify) is injected into them; in float32 each member's
        # own float32 arithmetic supplies it
        step_devs[fw] = [] if dtype == "float64" else None
        steps, gap, norm_errors[fw] = _step_checks(fw, family, spec, snaps, fw_losses[fw], batches64, opt,
                                                   variants[fw], dtype, gates, carry, copies[fw], clip_norms[fw],
                                                   precisions[fw], step_devs[fw])
        del snaps[:]
        checks += steps
        notes.append(gap_note(fw, gap))
        diverged = divergence_note(fw, fw_losses[fw])
        if diverged:
            notes.append(diverged)
        bad = [c for c in steps if not c.ok and c.first_bad_step is not None]
        if bad:
            first = min(c.first_bad_step for c in bad)
            at = [c.name for c in bad if c.first_bad_step == first]
            names = ", ".join(at[:3]) + (f" and {len(at) - 3} more" if len(at) > 3 else "")
            notes.append(f"{fw}: training leaves the policy at step {first} of {n_steps} ({names}), "
                         f"from its own weights before that step")
        timings["checking steps"] += time.perf_counter() - t1
    timings["training"] = time.perf_counter() - t - timings["checking steps"]

    t = time.perf_counter()
    progress(f"reference: {n_steps} {what} steps in float64 per optimiser variant, and {tolerance.ENSEMBLE} retrains "
             f"in {dtype} from starts moved by one ulp (the end-of-training floor)")
    runs = _reference_runs(family, spec, params, batches64, opt, {fw: (variants[fw], copies[fw]) for fw in frameworks},
                           dtype, seed, carry, norm_errors, precisions, step_devs)
    runs_notes = [_clip_note(fw, errors, opt.hyper) for fw, errors in norm_errors.items() if errors is not None]
    if len({id(r.params) for r in runs.values()}) > 1:
        plans = ", ".join(f"{fw} {v}" + (" with summed biases" if copies[fw] else "") for fw, v in variants.items())
        runs_notes.insert(0, f"{opt.name}: the frameworks' variants compute different runs ({plans}); each framework "
                             f"is checked against its own, and a pair may differ by the distance between the "
                             f"reference's runs of the two")
    notes[runs_notes_at:runs_notes_at] = runs_notes
    timings["training: reference"] = time.perf_counter() - t
    timings["training"] += timings["training: reference"]

    t = time.perf_counter()
    sides = []
    against = f"reference {opt.label}"
    for fw in frameworks:
        progress(f"{fw}: extracting the trained weights, running the held-out set, recomputing in the reference")
        run = runs[fw]
        trained = adapters[fw].extract(models[fw])
        for pname, value in run.params.items():
            checks.append(compare_tensor(fw, against, "trained parameter", pname, trained[pname], value,
                                         run.allow_trained[pname], dtype, None, gates("trained parameter", pname)))
        checks.append(compare_tensor(fw, against, "loss", "training", fw_losses[fw], run.losses,
                                     run.allow_trained["training"], dtype, 0))
        with devices.scope(fw, placed[fw]):
            results = held_out_run(spec, adapters[fw], models[fw], test, dtype)
        ref, allow = held_out_reference(spec, trained, test, results["output"].get("decoded"), dtype,
                                        precisions[fw])
        fw_checks, fw_notes = held_out_checks(fw, spec, results, ref, allow, dtype)
        checks += fw_checks
        notes += fw_notes
        sides.append(_Side(fw, trained, fw_losses[fw], results, ref, allow, run))
        if trained_out is not None:
            trained_out[f"reference, {fw}'s rules"] = run.params
            trained_out[fw] = trained

    for i in range(len(sides)):
        for j in range(i + 1, len(sides)):
            a, b = sides[i], sides[j]
            pair = f"{a.framework}~{b.framework}"
            for pname in params:
                checks.append(compare_tensor(pair, b.framework, "trained parameter", pname, a.trained[pname],
                                             b.trained[pname], _trained_pair_allowance(a, b, pname), dtype))
            checks.append(compare_tensor(pair, b.framework, "loss", "training", a.losses, b.losses,
                                         _trained_pair_allowance(a, b, "training"), dtype, 0))

            def pair_allow(q: str, n: str) -> Allowance:
                ra, rb = a.ref[q][n], b.ref[q][n]
                drift = float(np.max(np.abs(ra - rb))) if np.size(ra) else 0.0
                return tolerance.trained_pair(a.allow[(q, n)], b.allow[(q, n)], drift, _largest(ra), _largest(rb))
            checks += compare_results(pair, b.framework, _without(a.results, "output", "decoded"),
                                      _without(b.results, "output", "decoded"), pair_allow, dtype,
                                      lambda q, n: family.time_axis(spec, q, n), gates)
    notes += _first_divergence(spec, frameworks, checks)
    timings["verifying"] = time.perf_counter() - t
    return Report(name, dtype, seed, tuple(frameworks), vers, tuple(checks), tuple(notes), timings)
