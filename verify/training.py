"""``compare`` with training: each framework trains its own model, and the reference checks the result.

From one seeded initialisation every framework builds its model, trains it with its optimiser (plain
SGD unless told; reference/optimizers.py models the others in each framework's own variant) on the
same batches (teacher forcing), and hands back its weights after every step through its adapter.
Training is checked where it is decided, one step at a time: the reference takes each step from the
framework's own weights before it, with its optimiser state carried along those weights, so rounding
has nothing to amplify. The end-of-training weights are also checked against the reference's own
float64 run of the same optimiser and variant, with a floor measured on an ensemble of reference
retrains from starts moved by one ulp. Then the reference recomputes outputs, states,
accuracy, loss and gradients on a held-out set from each framework's trained weights. The report
has, per framework: the weights read back after building, every training step, the trained weights
and training losses against the reference's run, and the held-out results against the reference;
then the frameworks against each other. verify/tolerance.py states every allowance.
"""
from __future__ import annotations

import dataclasses
import importlib
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from adapters import registry
from reference import optimizers
from reference.params import init_params
from verify import tolerance
from verify.compare import Results, compare_results, compare_tensor
from verify.report import Allowance, Check, Report


@dataclass(frozen=True)
class TrainSetup:
    """How a zoo model is trained: ``make_data(spec, rng, steps, batch_size, held_out)`` gives the
    training batches (one per step) and the held-out batch."""

    steps: int
    batch_size: int
    lr: float
    held_out: int
    make_data: Callable[..., tuple[list, Any]]


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


def optimizer_for(setup: TrainSetup, name: str = "sgd", hyper: dict | None = None, lr: float | None = None
                  ) -> Optimizer:
    """The optimiser ``name`` with ``lr`` (default: the setup's for SGD, ``LEARNING_RATES`` otherwise); ValueError
    (one line) for an unknown name or hyper-parameter."""
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


def _ensemble_floor(family: Any, spec: Any, params: dict, batches64: list, opt: Optimizer, variant: str, dtype: str,
                    seed: int, ref_params: dict, ref_losses: np.ndarray) -> tuple[dict[str, float], float]:
    """The end-of-training floor: how far ``tolerance.ENSEMBLE`` reference retrains in ``dtype``, each from a
    start moved by one ulp, land from the float64 trajectory (the widest member, per tensor)."""
    low = [b.astype(np.dtype(dtype)) for b in batches64]
    floors = dict.fromkeys(ref_params, 0.0)
    loss_floor = 0.0
    for member in range(tolerance.ENSEMBLE):
        trained, losses = family.optimizer_train(spec, _ulp_moved(_cast(params, dtype), seed, member), low, opt.lr,
                                                 opt.name, variant, opt.hyper)
        for n, v in ref_params.items():
            floors[n] = max(floors[n], _floor(trained[n], v))
        loss_floor = max(loss_floor, _floor(losses, ref_losses))
    return floors, loss_floor


def _step_checks(framework: str, family: Any, spec: Any, snapshots: list[dict], losses: np.ndarray,
                 batches64: list, opt: Optimizer, variant: str, dtype: str, gates: Callable) -> list[Check]:
    """Every optimiser step of one framework, checked where it is decided: the reference takes the step from the
    framework's own weights before it (``snapshots[s]``), with its own optimiser state updated at every step by its
    gradient at those weights (so it follows the framework's state up to rounding), and is compared with the
    framework's weights after it (``snapshots[s + 1]``). One check per tensor over all steps; its first bad step is
    the training step."""
    names = list(snapshots[0])
    got: dict[str, list] = {n: [] for n in names}
    want: dict[str, list] = {n: [] for n in names}
    bounds: dict[str, list] = {n: [] for n in names}
    ref_losses, loss_floors = [], []
    state = optimizers.init(opt.name, snapshots[0], variant, **opt.hyper)
    state_dev = {slot: {n: np.zeros(v.shape) for n, v in snapshots[0].items()} for slot in optimizers.SLOTS[opt.name]}
    for s, batch in enumerate(batches64):
        before = snapshots[s]
        loss, grads = family.gradients(spec, before, batch)
        low_loss, low_grads = loss, grads  # float64: no floor is measured, the float64 rule has none
        if dtype != "float64":
            low_loss, low_grads = family.gradients(spec, _cast(before, dtype), batch.astype(np.dtype(dtype)))
        scale = max(float(np.max(np.abs(g))) for g in grads.values())
        grad_atol = {n: tolerance.for_tensor(grads[n], dtype, _floor(low_grads[n], grads[n]), scale).atol
                     for n in names}
        bound, state_dev = tolerance.optimizer_step_error(opt.name, variant, opt.hyper, opt.lr, before, grads, state,
                                                          grad_atol, state_dev, dtype)
        after, state = optimizers.step(opt.name, before, grads, state, opt.lr, variant, **opt.hyper)
        for n in names:
            bounds[n].append(bound[n])
            got[n].append(snapshots[s + 1][n])
            want[n].append(after[n])
        ref_losses.append(float(loss))
        loss_floors.append(abs(float(low_loss) - float(loss)))
    against = f"reference {opt.label} step"
    checks = [compare_tensor(framework, against, "training step", n, np.stack(got[n]), np.stack(want[n]),
                             tolerance.for_optimizer_step(bounds[n], dtype, opt.name), dtype, 0,
                             gates("training step", n))
              for n in names]
    ref_l = np.asarray(ref_losses)
    checks.append(compare_tensor(framework, against, "training step", "loss", losses, ref_l,
                                 tolerance.for_step_losses(ref_l, dtype, np.asarray(loss_floors)), dtype, 0))
    return checks


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


def _first_divergence(spec: Any, frameworks: tuple[str, ...], checks: list[Check]) -> list[str]:
    """One line per framework whose held-out outputs diverge: the first tensor and step, in processing order."""
    lines = []
    for fw in frameworks:
        bad = {c.name: c for c in checks if c.framework == fw and c.against == "reference" and c.quantity == "output"
               and not c.ok and c.first_bad_step is not None}
        for name in _PROCESSING_ORDER:
            if name in bad:
                step = bad[name].first_bad_step
                extra = f" (emits output symbol {step + 1})" if name == "decoder" else ""
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
    return spec.kind != "bidirectional" and spec.decoding == "greedy"


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


def held_out_reference(spec: Any, trained: dict, test: Any, decoded: np.ndarray | None, dtype: str
                       ) -> tuple[Results, dict[tuple[str, str], Allowance]]:
    """The reference on the held-out set from ``trained`` weights, along the symbols a framework ``decoded``
    (greedy decoding), and the allowance of each tensor; with teacher-forced loss and gradients where
    ``held_out_run`` has them."""
    from verify.engine import seen_by
    family = importlib.import_module(spec.family)
    path = test
    if decoded is not None and spec.decoding == "greedy":
        path = test.with_fed_back(decoded[:, :-1].astype(np.int64))
    path64 = seen_by(path, dtype)
    ref = family.evaluate(spec, trained, path64)
    low = None  # the noise floor: the same recomputation rounded to dtype
    if dtype != "float64":
        low = family.evaluate(spec, _cast(trained, dtype), path64.astype(np.dtype(dtype)))
    allow: dict[tuple[str, str], Allowance] = {}
    for q, tensors in ref.items():
        for n, v in tensors.items():
            if q != "accuracy" and n != "decoded":
                allow[(q, n)] = tolerance.for_tensor(v, dtype, _floor(None if low is None else low[q][n], v))
    allow[("accuracy", "accuracy")] = tolerance.for_accuracy(
        family.decision_margins(spec, ref, path64), allow[("output", "prediction")],
        float(np.max(np.abs(ref["output"]["prediction"]))))
    if _teacher_forced(spec):
        test64 = seen_by(test, dtype)
        t_ref = family.evaluate(spec, trained, test64, "teacher")
        t_low = family.evaluate(spec, _cast(trained, dtype), test64.astype(np.dtype(dtype)), "teacher") \
            if dtype != "float64" else None
        for q in ("loss", "gradient"):
            tq = f"teacher-forced {q}"
            ref[tq] = t_ref[q]
            for n, v in t_ref[q].items():
                allow[(tq, n)] = tolerance.for_tensor(v, dtype, _floor(None if t_low is None else t_low[q][n], v))
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


def _reference_runs(family: Any, spec: Any, params: dict, batches64: list, opt: Optimizer, variants: list[str],
                    dtype: str, seed: int) -> dict[str, _ReferenceRun]:
    """Per optimiser variant: the reference's float64 run and its ensemble floor. Variants whose float64 runs agree
    bit for bit (plain SGD at a float32-exact learning rate) share one run, and its ensemble is not repeated."""
    runs: dict[str, _ReferenceRun] = {}
    for variant in dict.fromkeys(variants):
        ref_params, ref_losses = family.optimizer_train(spec, params, batches64, opt.lr, opt.name, variant, opt.hyper)
        same = next((r for r in runs.values() if np.array_equal(r.losses, ref_losses)
                     and all(np.array_equal(r.params[n], v) for n, v in ref_params.items())), None)
        if same is not None:
            runs[variant] = same
            continue
        floors, loss_floor = _ensemble_floor(family, spec, params, batches64, opt, variant, dtype, seed, ref_params,
                                             ref_losses)
        allow_trained = {n: tolerance.for_trained(v, dtype, floors[n]) for n, v in ref_params.items()}
        allow_trained["training"] = tolerance.for_trained(ref_losses, dtype, loss_floor)
        runs[variant] = _ReferenceRun(ref_params, ref_losses, allow_trained)
    return runs


def _trained_pair_allowance(a: _Side, b: _Side, name: str) -> Allowance:
    """Two frameworks' trained weights (or training losses, ``name`` "training"): both sides' allowances, plus the
    distance between the reference's runs of their two optimiser variants where those differ."""
    if a.reference is b.reference:
        return tolerance.combined(a.reference.allow_trained[name], b.reference.allow_trained[name])
    ra, rb = (r.losses if name == "training" else r.params[name] for r in (a.reference, b.reference))
    return tolerance.trained_pair(a.reference.allow_trained[name], b.reference.allow_trained[name],
                                  float(np.max(np.abs(ra - rb))), _largest(ra), _largest(rb))


def _variant_of(framework: str) -> str:
    if framework not in OPTIMIZER_VARIANT:
        raise ValueError(f"no optimiser variant for framework {framework!r}; expected one of: "
                         f"{', '.join(OPTIMIZER_VARIANT)}")
    return OPTIMIZER_VARIANT[framework]


def compare_trained(name: str, spec: Any, setup: TrainSetup, frameworks: tuple[str, ...], dtype: str, seed: int,
                    progress: Callable[[str], None] = lambda s: None, variant: str = "",
                    steps: int | None = None, optimizer: str = "sgd", hyper: dict | None = None,
                    lr: float | None = None) -> Report:
    """Build, train, extract and verify every framework; ``variant`` builds a deliberately broken model.

    ``optimizer`` (reference/optimizers.py's names) with ``hyper`` trains every framework, each with its own
    variant; ``lr`` defaults to the setup's for plain SGD and to ``LEARNING_RATES`` for the others."""
    from verify.engine import seen_by, versions  # here: the engine dispatches to this module

    family = importlib.import_module(spec.family)
    opt = optimizer_for(setup, optimizer, hyper, lr)
    variants = {fw: _variant_of(fw) for fw in frameworks}

    gates = gates_of(spec)
    adapters = {fw: registry.get(fw, spec) for fw in frameworks}
    rng = np.random.default_rng(seed)
    params = init_params(spec, rng)
    n_steps = setup.steps if steps is None else steps
    batches, test = setup.make_data(spec, rng, n_steps, setup.batch_size, setup.held_out)
    timings: dict[str, float] = {}
    checks: list[Check] = []
    what = "plain SGD" if opt.name == "sgd" else opt.name
    notes = [spec.description,
             f"training: {n_steps} {what} steps (lr {opt.lr:g}, batch {setup.batch_size}, teacher forcing) "
             f"from one seeded start; held-out set: {len(test)} examples, decoding {spec.decoding}",
             "optimiser: " + "; ".join(f"{fw} {optimizers.describe(opt.name, variants[fw], opt.lr, **opt.hyper)}"
                                       for fw in frameworks)]

    t = time.perf_counter()
    progress(f"importing {', '.join(frameworks)}")
    vers = versions(spec, frameworks)
    timings["imports"] = time.perf_counter() - t

    t = time.perf_counter()
    models = {}
    exact = tolerance.for_parameters(dtype)
    for fw in frameworks:
        progress(f"{fw}: building the model ({dtype}) and reading it back")
        models[fw] = adapters[fw].build(spec, params, dtype, variant) if variant else \
            adapters[fw].build(spec, params, dtype)
        back = adapters[fw].extract(models[fw])
        for pname, value in params.items():
            got = back.get(pname, np.full_like(value, np.nan))
            checks.append(compare_tensor(fw, "built weights", "parameter", pname, got,
                                         value.astype(dtype).astype(np.float64), exact, dtype, None,
                                         gates("parameter", pname)))
    timings["building"] = time.perf_counter() - t

    t = time.perf_counter()
    progress(f"reference: {n_steps} {what} steps in float64 per optimiser variant, and {tolerance.ENSEMBLE} retrains "
             f"in {dtype} from starts moved by one ulp (the end-of-training floor)")
    batches64 = [seen_by(b, dtype) for b in batches]
    runs = _reference_runs(family, spec, params, batches64, opt, list(variants.values()), dtype, seed)
    notes.append(f"training checked step by step: before each step the reference starts from the framework's own "
                 f"weights; end-of-training floor: the widest of {tolerance.ENSEMBLE} reference retrains in {dtype} "
                 f"from starts moved by one ulp")
    if len({id(r) for r in runs.values()}) > 1:
        notes.append(f"{opt.name}: the frameworks' variants compute different runs "
                     f"({', '.join(f'{fw} {v}' for fw, v in variants.items())}); each framework is checked against "
                     f"its own, and a pair may differ by the distance between the reference's runs of the two")
    timings["training: reference"] = time.perf_counter() - t
    fw_losses, snapshots = {}, {}
    for fw in frameworks:
        t1 = time.perf_counter()
        progress(f"{fw}: training {n_steps} steps")
        snaps = [adapters[fw].extract(models[fw])]
        fw_losses[fw] = np.asarray(adapters[fw].train(
            models[fw], spec, batches, opt.lr, dtype, progress,
            after_step=lambda i, fw=fw, snaps=snaps: snaps.append(adapters[fw].extract(models[fw])),
            optimizer=opt.name, hyper=opt.hyper))
        snapshots[fw] = snaps
        timings[f"training: {fw}"] = time.perf_counter() - t1
    timings["training"] = time.perf_counter() - t

    t = time.perf_counter()
    for fw in frameworks:
        progress(f"{fw}: checking each of its {n_steps} training steps from its own weights")
        steps = _step_checks(fw, family, spec, snapshots[fw], fw_losses[fw], batches64, opt, variants[fw], dtype,
                             gates)
        checks += steps
        bad = [c for c in steps if not c.ok and c.first_bad_step is not None]
        if bad:
            first = min(c.first_bad_step for c in bad)
            at = [c.name for c in bad if c.first_bad_step == first]
            names = ", ".join(at[:3]) + (f" and {len(at) - 3} more" if len(at) > 3 else "")
            notes.append(f"{fw}: training leaves the policy at step {first} of {n_steps} ({names}), "
                         f"from its own weights before that step")
    timings["checking steps"] = time.perf_counter() - t

    t = time.perf_counter()
    sides = []
    against = f"reference {opt.label}"
    for fw in frameworks:
        progress(f"{fw}: extracting the trained weights, running the held-out set, recomputing in the reference")
        run = runs[variants[fw]]
        trained = adapters[fw].extract(models[fw])
        for pname, value in run.params.items():
            checks.append(compare_tensor(fw, against, "trained parameter", pname, trained[pname], value,
                                         run.allow_trained[pname], dtype, None, gates("trained parameter", pname)))
        checks.append(compare_tensor(fw, against, "loss", "training", fw_losses[fw], run.losses,
                                     run.allow_trained["training"], dtype, 0))
        results = held_out_run(spec, adapters[fw], models[fw], test, dtype)
        ref, allow = held_out_reference(spec, trained, test, results["output"].get("decoded"), dtype)
        fw_checks, fw_notes = held_out_checks(fw, spec, results, ref, allow, dtype)
        checks += fw_checks
        notes += fw_notes
        sides.append(_Side(fw, trained, fw_losses[fw], results, ref, allow, run))

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
