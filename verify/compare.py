"""The comparison engine: walks nested results by path and measures each tensor's disagreement."""
from __future__ import annotations

from typing import Callable, Iterator

import numpy as np

from verify.report import Allowance, Check

Results = dict[str, dict[str, np.ndarray]]

# A failing check keeps its share per step for at most this many steps (the first ones, where a divergence
# starts): enough for any sequence a person plots, and a report never carries a whole tensor.
MAX_STEPS = 10_000


def paths(results: Results) -> Iterator[tuple[str, str]]:
    """Every (quantity, name) in a nested result, in a stable order."""
    for quantity in results:
        for name in results[quantity]:
            yield quantity, name


def compare_tensor(framework: str, against: str, quantity: str, name: str, x: np.ndarray, ref: np.ndarray,
                   allowance: Allowance, dtype: str, time_axis: int | None = None,
                   gates: tuple[str, ...] = ()) -> Check:
    """Measure ``x`` against ``ref`` (both upcast to float64 before differencing)."""
    x = np.asarray(x, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if x.shape != ref.shape:
        why = f"shape {x.shape} where {ref.shape} was expected"
        return Check(framework, against, quantity, name, tuple(ref.shape), dtype, float("inf"), None,
                     float("inf"), float("inf"), (), ref.size, ref.size,
                     Allowance(allowance.atol, allowance.rtol, why, allowance.rule), False)
    finite = np.isfinite(x)
    diff = np.where(finite, np.abs(x - ref), np.inf)
    limit = allowance.atol + allowance.rtol * np.abs(ref)
    bad = diff > limit
    with np.errstate(divide="ignore", invalid="ignore"):  # a zero allowance: any difference uses it infinitely
        shares = np.where(diff == 0, 0.0, diff / limit)
    used = float(np.max(shares)) if diff.size else 0.0
    where = tuple(int(i) for i in np.unravel_index(np.argmax(diff), diff.shape)) if diff.size else ()
    max_abs = float(diff.max()) if diff.size else 0.0
    nonzero = ref != 0
    if np.any(~nonzero & (diff > 0)):
        max_rel = None
    else:
        max_rel = float(np.max(diff[nonzero] / np.abs(ref[nonzero]))) if np.any(nonzero) else 0.0
    scale = float(np.max(np.abs(ref))) if ref.size else 0.0
    norm_rel = max_abs / scale if scale > 0 else max_abs
    spacing = np.spacing(np.abs(ref).astype(dtype)).astype(np.float64)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):  # next to a zero reference: inf ulp
        ulp = float(np.max(diff / spacing)) if diff.size else 0.0
    first_bad_step = None
    if time_axis is not None and bad.any():
        per_step = bad.any(axis=tuple(a for a in range(bad.ndim) if a != time_axis))
        first_bad_step = int(np.argmax(per_step))
    gate, bad_gates = None, ()
    if gates and ref.ndim >= 1 and diff.size:
        block = ref.shape[-1] // len(gates)
        gate = gates[where[-1] // block]
        cols = np.nonzero(bad.reshape(-1, ref.shape[-1]).any(axis=0))[0]
        bad_gates = tuple(dict.fromkeys(gates[c // block] for c in cols))
    step_errors: tuple[float, ...] = ()
    gate_errors: tuple[float, ...] = ()
    gate_names: tuple[str, ...] = ()
    if bad.any():
        if time_axis is not None:
            per_step = np.moveaxis(shares, time_axis, 0).reshape(ref.shape[time_axis], -1).max(axis=1)
            step_errors = tuple(float(v) for v in per_step[:MAX_STEPS])
        if gates and ref.ndim >= 1 and ref.shape[-1] % len(gates) == 0:
            per_gate = shares.reshape(-1, len(gates), ref.shape[-1] // len(gates)).max(axis=(0, 2))
            gate_errors, gate_names = tuple(float(v) for v in per_gate), tuple(gates)
    value = reference_value = None
    if ref.size == 1:  # a scalar (loss, accuracy): the values themselves are worth showing
        value, reference_value = float(x.reshape(-1)[0]), float(ref.reshape(-1)[0])
    return Check(framework, against, quantity, name, tuple(ref.shape), dtype, max_abs, max_rel, norm_rel, ulp,
                 where, int(bad.sum()), int(ref.size), allowance, not bad.any(), first_bad_step, gate, bad_gates,
                 value, reference_value, used=used, step_errors=step_errors,
                 gate_errors=gate_errors, gate_names=gate_names)


def compare_steps(framework: str, against: str, quantity: str, name: str, xs: list[np.ndarray],
                  refs: list[np.ndarray], allowance: Allowance, dtype: str, gates: tuple[str, ...] = ()) -> Check:
    """``compare_tensor`` of ``np.stack(xs)`` against ``np.stack(refs)`` along time axis 0, field for field, one step
    at a time: a training run's weights after every step would otherwise be stacked and upcast whole (several
    copies of every weight at every step: the lm's 308 steps of 2.2M weights are 5.4 GB per float64 copy)."""
    if len(xs) != len(refs) or not refs or any(np.shape(x) != np.shape(r) for x, r in zip(xs, refs)) \
            or len({np.shape(r) for r in refs}) > 1 or np.ndim(refs[0]) == 0:  # ragged, or scalars: stacked whole
        return compare_tensor(framework, against, quantity, name, np.stack(xs), np.stack(refs), allowance, dtype, 0,
                              gates)
    shape = (len(refs),) + np.shape(refs[0])
    max_abs, where, n_bad, used, ulp, scale = 0.0, (), 0, 0.0, 0.0, 0.0
    max_rel: float | None = 0.0
    first_bad_step, bad_cols = None, np.zeros(shape[-1], bool)
    step_shares, gate_shares = [], []
    split = bool(gates) and shape[-1] % len(gates) == 0
    for s, (x, ref) in enumerate(zip(xs, refs)):
        x, ref = np.asarray(x, np.float64), np.asarray(ref, np.float64)
        diff = np.where(np.isfinite(x), np.abs(x - ref), np.inf)
        limit = allowance.atol + allowance.rtol * np.abs(ref)
        bad = diff > limit
        with np.errstate(divide="ignore", invalid="ignore"):
            shares = np.where(diff == 0, 0.0, diff / limit)
        if diff.size:
            step_max = float(diff.max())
            if step_max > max_abs or (s == 0):  # the first largest, in C order over (step, ...) as argmax finds it
                max_abs, where = step_max, (s,) + tuple(int(i) for i in np.unravel_index(np.argmax(diff), diff.shape))
            used = max(used, float(np.max(shares)))
            nonzero = ref != 0
            if np.any(~nonzero & (diff > 0)):
                max_rel = None
            elif max_rel is not None and np.any(nonzero):
                max_rel = max(max_rel, float(np.max(diff[nonzero] / np.abs(ref[nonzero]))))
            scale = max(scale, float(np.max(np.abs(ref))))
            spacing = np.spacing(np.abs(ref).astype(dtype)).astype(np.float64)
            with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
                ulp = max(ulp, float(np.max(diff / spacing)))
        n_bad += int(bad.sum())
        if bad.any() and first_bad_step is None:
            first_bad_step = s
        if gates and diff.size:
            bad_cols |= bad.reshape(-1, shape[-1]).any(axis=0)
        step_shares.append(float(np.max(shares)) if diff.size else 0.0)
        if split:
            gate_shares.append(shares.reshape(-1, len(gates), shape[-1] // len(gates)).max(axis=(0, 2)))
    total = int(np.prod(shape))
    norm_rel = max_abs / scale if scale > 0 else max_abs
    gate, bad_gates = None, ()
    if gates and total:
        block = shape[-1] // len(gates)
        gate = gates[where[-1] // block]
        bad_gates = tuple(dict.fromkeys(gates[c // block] for c in np.nonzero(bad_cols)[0]))
    step_errors: tuple[float, ...] = ()
    gate_errors: tuple[float, ...] = ()
    gate_names: tuple[str, ...] = ()
    if n_bad:
        step_errors = tuple(step_shares[:MAX_STEPS])
        if split:
            gate_errors, gate_names = tuple(float(v) for v in np.max(gate_shares, axis=0)), tuple(gates)
    value = reference_value = None
    if total == 1:
        value, reference_value = float(np.asarray(xs[0]).reshape(-1)[0]), float(np.asarray(refs[0]).reshape(-1)[0])
    return Check(framework, against, quantity, name, shape, dtype, max_abs, max_rel, norm_rel, ulp, where, n_bad,
                 total, allowance, n_bad == 0, first_bad_step, gate, bad_gates, value, reference_value, used=used,
                 step_errors=step_errors, gate_errors=gate_errors, gate_names=gate_names)


def compare_results(framework: str, against: str, results: Results, ref: Results,
                    allowance: Callable[[str, str], Allowance], dtype: str,
                    time_axis: Callable[[str, str], int | None],
                    gates: Callable[[str, str], tuple[str, ...]]) -> list[Check]:
    """One check per tensor of ``ref``; a tensor the framework did not produce is an error in its adapter."""
    checks = []
    for quantity, name in paths(ref):
        if name not in results.get(quantity, {}):
            raise ValueError(f"{framework} results lack {quantity}/{name}")
        checks.append(compare_tensor(framework, against, quantity, name, results[quantity][name], ref[quantity][name],
                                     allowance(quantity, name), dtype, time_axis(quantity, name),
                                     gates(quantity, name)))
    return checks
