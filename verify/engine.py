"""One ``compare``: build each framework's model, read it back, run it, and check it against the reference."""
from __future__ import annotations

import importlib
import platform
import time
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from adapters import registry
from reference.params import init_params
from reference.spec import Batch, SequenceSpec
from reference.stack import StackSpec
from verify import device as devices
from verify import hypotheses, noise, stage, tolerance, zoo
from verify.compare import Results, compare_results, compare_tensor
from verify.odd_one_out import odd_one_out
from verify.report import Allowance, Check, Report

DTYPES = ("float32", "float64")


@dataclass(frozen=True)
class FrameworkRun:
    """What one framework produced: the weights read back from its model and its own results."""

    framework: str
    extracted: dict[str, np.ndarray]
    results: Results


def run_framework(framework: str, spec: SequenceSpec, params: dict, batch: Batch, dtype: str,
                  placement: devices.Placement | None = None) -> FrameworkRun:
    """Build the framework's model from ``params``, read its weights back, and run it on ``batch``; on the device
    of ``placement`` (verify/device.py; the CPU without one)."""
    adapter = registry.get(framework, spec)
    where = "cuda" if placement is not None and placement.on_gpu else "cpu"
    with devices.scope(framework, placement):
        built = adapter.build(spec, params, dtype, **devices.build_kwargs(framework, where))
        return FrameworkRun(framework, adapter.extract(built), adapter.run(built, spec, batch, dtype))


def seen_by(batch: Batch, dtype: str) -> Batch:
    """The batch as a ``dtype`` framework sees it, upcast again to float64 for the reference."""
    return batch.astype(np.dtype(dtype)).astype(np.float64)


def reference_and_allowances(spec: SequenceSpec, params: dict, batch: Batch, dtype: str,
                             precision: str | None = None) -> tuple[Results, dict[tuple[str, str], Allowance]]:
    """The float64 reference on ``params``, and the allowance of each of its tensors for ``dtype`` (kernels rounding
    at ``precision`` where that is coarser: TF32 on a GPU, verify/tolerance.py)."""
    family = importlib.import_module(spec.family)
    batch64 = seen_by(batch, dtype)
    ref = family.evaluate(spec, params, batch64)
    floor = noise.floors(spec, params, batch64, dtype, ref) if dtype != "float64" else {}
    allow: dict[tuple[str, str], Allowance] = {}
    gradient_scale = tolerance.gradient_scale(ref.get("gradient", {}))
    for quantity, tensors in ref.items():
        for name, value in tensors.items():
            if quantity == "accuracy":
                continue
            scale = gradient_scale if quantity == "gradient" else None
            allow[(quantity, name)] = tolerance.for_tensor(value, dtype, floor.get((quantity, name), 0.0), scale,
                                                           precision)
    allow[("accuracy", "accuracy")] = tolerance.for_accuracy(
        family.decision_margins(spec, ref, batch64), allow[("output", "prediction")],
        float(np.max(np.abs(ref["output"]["prediction"]))))
    return ref, allow


def _locators(spec: SequenceSpec) -> tuple[Callable, Callable]:
    family = importlib.import_module(spec.family)

    def time_axis(q: str, n: str) -> int | None:
        return family.time_axis(spec, q, n)

    def gates(q: str, n: str) -> tuple[str, ...]:
        return family.gate_blocks(spec, n) if q in ("gradient", "parameter") else ()
    return time_axis, gates


def check_run(spec: SequenceSpec, batch: Batch, dtype: str, run: FrameworkRun,
              built_from: dict | None = None, precision: str | None = None) -> tuple[list[Check], Results, dict]:
    """Checks of one framework against the reference computed on the weights read back from it.

    ``built_from``: the weights the model was built from, when we built it; the read-back weights
    must equal them rounded to ``dtype`` (a user's own model has no such weights). ``precision``: what the
    framework's kernels rounded at, where coarser than ``dtype`` (TF32 on a GPU).
    """
    ref, allow = reference_and_allowances(spec, run.extracted, batch, dtype, precision)
    time_axis, gates = _locators(spec)
    checks: list[Check] = []
    if built_from is not None:
        exact = tolerance.for_parameters(dtype)
        for name, value in built_from.items():
            expected = value.astype(dtype).astype(np.float64)
            got = run.extracted.get(name, np.full_like(value, np.nan))
            checks.append(compare_tensor(run.framework, "built weights", "parameter", name, got, expected, exact,
                                         dtype, None, gates("parameter", name)))
    checks += compare_results(run.framework, "reference", run.results, visible(ref, run.results),
                              lambda q, n: allow[(q, n)], dtype, time_axis, gates)
    return checks, ref, allow


def diagnose_run(spec: SequenceSpec, batch: Batch, dtype: str, run: FrameworkRun, checks: list[Check], ref: Results,
                 allow: dict[tuple[str, str], Allowance], label: str | None = None) -> tuple[list[Check], list[str]]:
    """When ``run`` fails against the reference: the known porting bugs that, injected into the reference on the
    weights read back from it, reproduce its results (verify/hypotheses.py). Returns the checks, its failing
    ones diagnosed, and the notes (naming the framework ``label``, if given); the checks unchanged and no
    notes when nothing failed or the model is not a layer stack (the seq2seq models have their own checks)."""
    if not isinstance(spec, StackSpec) or not any(hypotheses.needs_diagnosis(c, run.framework) for c in checks):
        return checks, []
    diagnosis = hypotheses.diagnose(spec, run.extracted, seen_by(batch, dtype), run.results,
                                    lambda q, n: allow[(q, n)], reference=ref)
    return (hypotheses.annotate(run.framework, diagnosis, checks, label),
            hypotheses.notes(label or run.framework, diagnosis))


def visible(ref: Results, results: Results) -> Results:
    """``ref`` without the inner layers' outputs a framework cannot show (those of the lower layers of one
    fused nn.LSTM(num_layers=2) or TF1 MultiRNNCell); every other tensor stays required."""
    return {q: {n: v for n, v in tensors.items()
                if q != "output" or n == "prediction" or n in results.get("output", {})}
            for q, tensors in ref.items()}


def unseen(ref: Results, run: FrameworkRun) -> list[str]:
    return [f"{run.framework} output/{n}" for n in ref.get("output", {}) if n not in visible(ref, run.results)["output"]]


def cross_check(spec: SequenceSpec, dtype: str, a: FrameworkRun, b: FrameworkRun,
                allow_a: dict, allow_b: dict) -> list[Check]:
    """Framework ``a`` against framework ``b``, allowed the sum of their allowances."""
    time_axis, gates = _locators(spec)
    return compare_results(f"{a.framework}~{b.framework}", b.framework, a.results, visible(b.results, a.results),
                           lambda q, n: tolerance.combined(allow_a[(q, n)], allow_b[(q, n)]), dtype, time_axis, gates)


def versions(spec: SequenceSpec, frameworks: tuple[str, ...]) -> dict[str, str]:
    out = {"python": platform.python_version(), "numpy": np.__version__}
    for fw in frameworks:
        out.update(registry.get(fw, spec).versions())
    return out


def entry_of(name: str, frameworks: tuple[str, ...], seed: int) -> zoo.ZooModel:
    """A zoo model, or ``random``'s draw from the seed; an unknown framework or family fails here, before any work."""
    if name == "random":
        from verify import random_model
        entry = random_model.entry(seed)
    else:
        entry = zoo.get(name)
    for fw in frameworks:
        registry.get(fw, entry.spec)
    return entry


def compare_model(name: str, frameworks: tuple[str, ...], dtype: str, seed: int,
                  progress: Callable[[str], None] = lambda s: None, optimizer: str | None = None,
                  device: str = "cpu") -> Report:
    """The whole ``compare`` for a zoo model: a deterministic function of its arguments. ``optimizer`` (a trained
    model only; the model's own, ``TrainSetup.optimizer``, when None) names reference/optimizers.py's optimiser
    every framework trains with. ``device`` "cuda" runs torch (and Keras, where TensorFlow sees a GPU) on the
    GPU, each checked at the precision its kernels round at there (verify/device.py; the report's notes say it)."""
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; expected one of: {', '.join(DTYPES)}")
    devices.check(device, frameworks)  # no CUDA device: one line, before any work
    entry = entry_of(name, frameworks, seed)
    spec = entry.spec
    if optimizer is not None and entry.train is None:
        raise ValueError(f"--optimizer applies to the trained models only; {name!r} is verified untrained")
    if entry.train is not None:  # a model trained before it is verified: verify/training.py
        from verify import training
        training.optimizer_for(entry.train, optimizer)  # an unknown optimiser fails before any work
        with stage.phase("training, then verifying"):
            report = training.compare_trained(name, spec, entry.train, frameworks, dtype, seed, progress,
                                              optimizer=optimizer, device=device)
        return replace(report, notes=report.notes + tuple(odd_one_out(report.checks)))
    rng = np.random.default_rng(seed)
    params = init_params(spec, rng)
    batch = entry.make_batch(spec, rng)
    timings: dict[str, float] = {}
    t = time.perf_counter()
    progress(f"importing {', '.join(frameworks)}")
    vers = versions(spec, frameworks)
    placements = devices.plan(device, frameworks, dtype, spec)
    timings["imports"] = time.perf_counter() - t
    runs, allows, checks, hidden, diagnosed = [], [], [], [], []
    for fw in frameworks:
        t = time.perf_counter()
        progress(f"{fw}: building, reading back and running the model ({dtype}"
                 f"{', on ' + placements[fw].where if placements[fw].on_gpu else ''})")
        with stage.phase("building and running", fw):
            run = run_framework(fw, spec, params, batch, dtype, placements[fw])
        timings[f"{fw}: build+run"] = time.perf_counter() - t
        t = time.perf_counter()
        progress(f"{fw}: recomputing in the reference and comparing")
        with stage.phase("recomputing in the reference", fw):
            fw_checks, ref, allow = check_run(spec, batch, dtype, run, built_from=params,
                                              precision=placements[fw].precision)
        hidden += unseen(ref, run)
        timings[f"{fw}: verify"] = time.perf_counter() - t
        if any(hypotheses.needs_diagnosis(c, fw) for c in fw_checks):
            t = time.perf_counter()
            progress(f"{fw}: trying the known porting bugs on the reference")
            with stage.phase("diagnosing", fw):
                fw_checks, found = diagnose_run(spec, batch, dtype, run, fw_checks, ref, allow)
            timings[f"{fw}: diagnosis"] = time.perf_counter() - t
            diagnosed += found
        runs.append(run)
        allows.append(allow)
        checks += fw_checks
    for i in range(len(runs)):
        for j in range(i + 1, len(runs)):
            checks += cross_check(spec, dtype, runs[i], runs[j], allows[i], allows[j])
    notes = (spec.description, *devices.notes(device, placements, dtype)) + \
        ((f"not visible, so not checked: {', '.join(hidden)}",) if hidden else ())
    notes += tuple(diagnosed) + tuple(odd_one_out(checks))
    return Report(name, dtype, seed, tuple(frameworks), vers, tuple(checks), notes, timings)
