"""``check``: a snapshot recomputed with the installed versions: drift per tensor, its direction, changed facts."""
from __future__ import annotations

import dataclasses
import importlib
import json
import math
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from verify import render, snapshot as snapshots, stage, tolerance
from verify.compare import Results, compare_results, compare_tensor
from verify.report import Allowance, Check, Report

DRIFT = "drift vs snapshot"
MAX_LISTED = 20  # moved tensors the terminal lists (the JSON has every one)


@dataclass(frozen=True)
class Move:
    """One tensor whose new result differs from the snapshot's."""

    framework: str
    quantity: str
    name: str
    max_abs: float              # max |new - old|
    share: float | None         # max |new - old| / (atol + rtol |ref|) of the tensor's allowance; None for decisions
    old_distance: float         # ||old - ref||_2, ref the reference recomputed now
    new_distance: float         # ||new - ref||_2
    direction: str              # "towards the reference", "away from the reference", "neither" (same distance)


@dataclass(frozen=True)
class Change:
    """An environment fact that differs: "torch.version", "2.13.0", "2.14.0"."""

    fact: str
    old: str
    new: str


@dataclass(frozen=True)
class Outcome:
    directory: str
    report: Report
    moves: tuple[Move, ...]
    compared: int               # tensors compared with the snapshot
    changes: tuple[Change, ...]
    facts: int                  # environment facts compared

    @property
    def reference_changed(self) -> tuple[Check, ...]:
        return tuple(c for c in self.report.failures if c.framework.startswith("reference"))

    @property
    def verdict(self) -> str:
        if self.reference_changed:
            return "reference changed"
        if self.report.failures:
            return "mismatch"
        return "moved within the policy" if self.moves else "unchanged"

    @property
    def exit_code(self) -> int:
        return 1 if self.report.failures else 0


def _direction(old_d: float, new_d: float) -> str:
    if new_d < old_d:
        return "towards the reference"
    if new_d > old_d:
        return "away from the reference"
    return "neither"


def _move(framework: str, q: str, n: str, new: np.ndarray, old: np.ndarray, ref: np.ndarray | None,
          allowance: Allowance | None) -> Move | None:
    new, old = np.asarray(new, np.float64), np.asarray(old, np.float64)
    if new.shape != old.shape or not np.all(np.isfinite(new)):
        return Move(framework, q, n, math.inf, math.inf, math.nan, math.nan, "not comparable")
    if np.array_equal(new, old):
        return None
    diff = np.abs(new - old)
    share = None
    if allowance is not None and ref is not None and ref.shape == new.shape:
        limit = allowance.atol + allowance.rtol * np.abs(ref)
        with np.errstate(divide="ignore", invalid="ignore"):
            share = float(np.max(np.where(diff == 0, 0.0, diff / limit)))
    if ref is None or ref.shape != new.shape:
        return Move(framework, q, n, float(diff.max()), share, math.nan, math.nan, "not comparable")
    old_d, new_d = float(np.linalg.norm(old - ref)), float(np.linalg.norm(new - ref))
    return Move(framework, q, n, float(diff.max()), share, old_d, new_d, _direction(old_d, new_d))


def _missing(value: np.ndarray) -> np.ndarray:
    """What stands in for a tensor the new run no longer produces: NaN, which fails any comparison and says so."""
    return np.full(np.shape(value), np.nan)


def _reference_drift(label: str, now: Results, old: Results, dtype: str) -> list[Check]:
    checks = []
    for q, tensors in old.items():
        for n, value in tensors.items():
            got = now.get(q, {}).get(n, _missing(value))
            checks.append(compare_tensor(label, "snapshot", DRIFT, f"{q} {n}", got, value,
                                         tolerance.for_reference_drift(np.asarray(value, np.float64)), dtype))
    return checks


def _parameters(framework: str, read_back: dict, weights: dict, dtype: str, gates: Callable) -> list[Check]:
    exact = tolerance.for_parameters(dtype)
    return [compare_tensor(framework, "built weights", "parameter", n, read_back.get(n, _missing(v)),
                           v.astype(dtype).astype(np.float64), exact, dtype, None, gates("parameter", n))
            for n, v in weights.items()]


def _drift(framework: str, new: Results, old: Results, ref: Results, allow: dict, dtype: str, time_axis: Callable,
           gates: Callable, skip: Callable[[str, str], bool] = lambda q, n: False
           ) -> tuple[list[Check], list[Move], int]:
    """Each tensor the snapshot recorded against the new run: a drift check (the sum of both sides' allowances)
    and, when it moved, which way relative to the reference."""
    checks, moves, compared = [], [], 0
    for q, tensors in old.items():
        for n, value in tensors.items():
            if skip(q, n) or (q, n) not in allow:
                continue
            got = new.get(q, {}).get(n, _missing(value))
            compared += 1
            checks.append(compare_tensor(framework, "snapshot", DRIFT, f"{q} {n}", got, value,
                                         tolerance.for_drift(allow[(q, n)]), dtype, time_axis(q, n), gates(q, n)))
            move = _move(framework, q, n, got, value, ref.get(q, {}).get(n), allow[(q, n)])
            if move is not None:
                moves.append(move)
    return checks, moves, compared


def _policy_changes(framework: str, old: dict[tuple[str, str], Allowance], now: dict) -> list[str]:
    out = []
    for key, a in old.items():
        b = now.get(key)
        if b is not None and (not math.isclose(a.atol, b.atol, rel_tol=1e-9, abs_tol=0.0)
                              or not math.isclose(a.rtol, b.rtol, rel_tol=1e-9, abs_tol=0.0)):
            out.append(f"{framework} {key[0]} {key[1]} atol {a.atol:.3g} -> {b.atol:.3g}, rtol {a.rtol:.3g} -> "
                       f"{b.rtol:.3g}")
    return out


def _stack(snap: snapshots.Snapshot, rec: snapshots.Record, refs: dict, progress: Callable
           ) -> tuple[list[Check], list[Move], int, list[str], list[str]]:
    from verify import engine
    spec, batch, dtype, fw = snap.spec, snap.batch, snap.dtype, rec.framework
    if fw == "tf1" and snap.build_options.get(fw):
        from adapters import tf1_stack
        tf1_stack.set_build_options(spec, **snap.build_options[fw])
    progress(f"{fw}: rebuilding from the snapshot's weights and running ({dtype})")
    with stage.phase("building and running", fw):  # as the snapshot ran it (a Keras 2 file: Keras 3's names)
        run = engine.run_framework(fw, snapshots.run_spec(snap, fw), rec.weights, batch, dtype)
    key = tuple((n, v.tobytes()) for n, v in sorted(rec.read_back.items()))
    checks: list[Check] = []
    if key not in refs:  # frameworks holding the same weights share one reference, checked against its snapshot once
        progress("reference: recomputing on the snapshot's weights")
        with stage.phase("recomputing in the reference", fw):
            refs[key] = engine.reference_and_allowances(spec, rec.read_back, batch, dtype)
        label = "reference" if not refs or len(refs) == 1 else f"reference ({fw}'s weights)"
        checks += _reference_drift(label, refs[key][0], rec.reference, dtype)
    ref, allow = refs[key]
    time_axis, gates = engine._locators(spec)
    checks += _parameters(fw, run.extracted, rec.weights, dtype, gates)
    checks += compare_results(fw, "reference", run.results, engine.visible(ref, run.results),
                              lambda q, n: allow[(q, n)], dtype, time_axis, gates)
    drift, moves, compared = _drift(fw, run.results, rec.results, ref, allow, dtype, time_axis, gates)
    return checks + drift, moves, compared, [], _policy_changes(fw, rec.policy, allow)


def _decisions_drift(fw: str, new: np.ndarray, old: np.ndarray, ref: Results, allow_pred: Allowance, dtype: str
                     ) -> Check:
    """Greedy decisions against the snapshot's: per sample, the first symbol that differs may differ only at a near
    tie of the reference along the snapshot's path (later symbols follow from it)."""
    pred = ref["output"]["prediction"]
    top2 = np.sort(pred, axis=-1)[..., -2:]
    slack = allow_pred.atol + allow_pred.rtol * float(np.max(np.abs(pred)))
    near = (top2[..., 1] - top2[..., 0]) <= 2 * slack
    base = compare_tensor(fw, "snapshot", DRIFT, "output decoded", new, old, Allowance(0.0, 0.0, ""), dtype, 1)
    if new.shape != old.shape:
        return base
    differ = new != old
    samples = np.nonzero(differ.any(axis=1))[0]
    first = differ.argmax(axis=1)
    bad = [int(b) for b in samples if not near[b, first[b]]]
    return dataclasses.replace(base, n_bad=len(bad), n_total=int(new.shape[0]), ok=not bad,
                               first_bad_step=int(min(first[b] for b in bad)) if bad else None,
                               allowed=tolerance.for_decisions(int(near.sum()), near.size, slack))


def _trained(snap: snapshots.Snapshot, rec: snapshots.Record, refs: dict, progress: Callable
             ) -> tuple[list[Check], list[Move], int, list[str], list[str]]:
    from adapters import registry
    from verify import training
    spec, test, dtype, fw = snap.spec, snap.batch, snap.dtype, rec.framework
    family = importlib.import_module(spec.family)
    adapter = registry.get(fw, spec)
    progress(f"{fw}: rebuilding from the snapshot's trained weights, running the held-out set ({dtype})")
    with stage.phase("building and running", fw):
        model = adapter.build(spec, rec.weights, dtype)
        read_back = adapter.extract(model)
        results = training.held_out_run(spec, adapter, model, test, dtype)
    old_decoded = rec.results.get("output", {}).get("decoded")
    new_decoded = results["output"].get("decoded")
    with stage.phase("recomputing in the reference", fw):
        ref, allow = training.held_out_reference(spec, rec.read_back, test, old_decoded, dtype)
        same_path = old_decoded is None or (new_decoded is not None and np.array_equal(new_decoded, old_decoded))
        ref_new, allow_new = (ref, allow) if same_path else \
            training.held_out_reference(spec, rec.read_back, test, new_decoded, dtype)
    label = "reference" if len(snap.records) == 1 else f"reference ({fw}'s weights)"
    gates = training.gates_of(spec)

    def time_axis(q: str, n: str) -> int | None:
        return family.time_axis(spec, q, n)
    checks = _reference_drift(label, ref, rec.reference, dtype)
    checks += _parameters(fw, read_back, rec.weights, dtype, gates)
    held, notes = training.held_out_checks(fw, spec, results, ref_new, allow_new, dtype)
    checks += held
    moves: list[Move] = []
    compared = 0
    if old_decoded is not None:
        compared += 1
        checks.append(_decisions_drift(fw, new_decoded if new_decoded is not None else _missing(old_decoded),
                                       old_decoded, ref, allow[("output", "prediction")], dtype))
        if not same_path:
            changed = int(np.sum(new_decoded != old_decoded)) if new_decoded is not None else old_decoded.size
            moves.append(Move(fw, "output", "decoded", float(changed), None, math.nan, math.nan,
                              f"{changed} of {old_decoded.size} decisions changed"))
            notes.append(f"{fw}: greedy decoding now feeds back other symbols than the snapshot's ({changed} of "
                         f"{old_decoded.size} decisions); results along the decoder's path are checked against the "
                         "reference along the new path, not against the snapshot")

    def skip(q: str, n: str) -> bool:  # along another decoder path the greedy results are not comparable
        return n == "decoded" or (not same_path and not q.startswith("teacher-forced"))
    drift, more, n = _drift(fw, results, rec.results, ref_new, allow_new, dtype, time_axis, gates, skip)
    return checks + drift, moves + more, compared + n, notes, _policy_changes(fw, rec.policy, allow_new)


def _changes(old: dict, new: dict) -> tuple[tuple[Change, ...], int]:
    a, b = snapshots.flatten(old), snapshots.flatten(new)
    keys = list(dict.fromkeys(list(a) + list(b)))
    changed = tuple(Change(k, a.get(k, "(not recorded)"), b.get(k, "(not recorded)")) for k in keys
                    if a.get(k) != b.get(k))
    return changed, len(keys)


def _versions(env: dict) -> dict[str, str]:
    """The versions a report names, from an environment record (whatever a hand-edited snapshot holds)."""
    def get(part: str, key: str) -> object:
        section = env.get(part)
        return section.get(key) if isinstance(section, dict) else None
    out = {"python": get("python", "version"), "numpy": get("numpy", "version"),
           "tensorflow": get("tensorflow", "version"), "keras": get("tensorflow", "keras"),
           "torch": get("torch", "version")}
    return {k: str(v) for k, v in out.items() if v is not None}


def check(directory: str, progress: Callable[[str], None] = lambda s: None) -> Outcome:
    """Reads the snapshot in ``directory`` (BadInput for one it cannot read), rebuilds every framework from its
    weights, reruns it and the reference with the installed versions, and compares."""
    t0 = time.perf_counter()
    snap = snapshots.read(directory)
    timings = {"reading": time.perf_counter() - t0}
    t = time.perf_counter()
    progress(f"importing {', '.join(snap.frameworks)}")
    env = snapshots.environment(snap.frameworks)
    timings["imports"] = time.perf_counter() - t
    checks: list[Check] = []
    moves: list[Move] = []
    notes: list[str] = []
    policy: list[str] = []
    compared = 0
    refs: dict = {}
    for rec in snap.records:
        t = time.perf_counter()
        c, m, n, more_notes, more_policy = (_trained if snap.kind == "trained" else _stack)(snap, rec, refs, progress)
        notes += more_notes
        policy += more_policy
        checks += c
        moves += m
        compared += n
        timings[f"{rec.framework}: rerun and compare"] = time.perf_counter() - t
    changes, facts = _changes(snap.environment, env)
    head = [f"snapshot {directory} ({snap.kind}, format_version {snapshots.FORMAT_VERSION}) taken with "
            + ", ".join(f"{k} {v}" for k, v in _versions(snap.environment).items())]
    if policy:
        head.append(f"policy: {len(policy)} allowance(s) recomputed now differ from the snapshot's (this check uses "
                    f"today's): {'; '.join(policy[:3])}" + (" ..." if len(policy) > 3 else ""))
    report = Report(snap.model, snap.dtype, snap.seed, snap.frameworks, _versions(env), tuple(checks),
                    tuple(head + list(snap.notes[:1]) + notes), timings)
    return Outcome(directory, report, tuple(moves), compared, changes, facts)


# --- rendering ---------------------------------------------------------------------------------------------------

def _num(v: float | None) -> str:
    return render._num(v) if v is None or math.isfinite(v) else "inf"


def _move_line(m: Move) -> str:
    if m.share is None:
        return f"  {m.framework} {m.quantity} {m.name}: {m.direction}"
    share = f"{m.share:.3g}" if math.isfinite(m.share) else "inf"
    dist = "" if math.isnan(m.old_distance) else f" (|old - ref| {_num(m.old_distance)} -> |new - ref| " \
                                                 f"{_num(m.new_distance)})"
    return f"  {m.framework} {m.quantity} {m.name}: max |new - old| {_num(m.max_abs)}, {share} of its allowance, " \
           f"{m.direction}{dist}"


def verdict_line(outcome: Outcome) -> str:
    r = outcome.report
    if outcome.verdict == "reference changed":
        worst = max(outcome.reference_changed, key=lambda c: c.norm_rel)
        return (f"verdict: reference changed: the float64 reference no longer reproduces its snapshot "
                f"({len(outcome.reference_changed)} tensor(s); {worst.name} moved {_num(worst.norm_rel)} normwise, "
                f"limit {tolerance.REFERENCE_DRIFT:g}): the reference code or numpy changed, so the snapshot's "
                "reference is no longer the one the frameworks are checked against")
    if outcome.verdict == "mismatch":
        return render.failures(r).splitlines()[0]
    if outcome.verdict == "moved within the policy":
        worst = max((m for m in outcome.moves if m.share is not None), key=lambda m: m.share, default=None)
        tail = f", the largest {worst.share:.3g} of its allowance ({worst.framework} {worst.quantity} " \
               f"{worst.name})" if worst else ""
        return (f"verdict: moved within the policy ({len(outcome.moves)} of {outcome.compared} tensors moved{tail}; "
                "every framework agrees with the reference)")
    return (f"verdict: unchanged ({outcome.compared} tensors as the snapshot recorded them, bit for bit; every "
            "framework agrees with the reference)")


def _pairs(outcome: Outcome) -> list[str]:
    """Per compared pair: how many checks, how many failed, the worst share of the allowance used; for the drift
    pairs also how many tensors moved and which way."""
    r = outcome.report
    lines = []
    for pair in dict.fromkeys((c.framework, c.against) for c in r.checks):
        mine = [c for c in r.checks if (c.framework, c.against) == pair]
        worst = max(mine, key=lambda c: c.used)
        failed = sum(not c.ok for c in mine)
        label = f"{pair[0]} vs {pair[1]}"
        if pair[0].startswith("reference"):
            top = max(mine, key=lambda c: c.norm_rel)
            lines.append(f"  {label}: {len(mine)} tensors, {failed} beyond the limit; largest normwise drift "
                         f"{_num(top.norm_rel)} ({top.name}; limit {tolerance.REFERENCE_DRIFT:g})")
        elif pair[1] == "snapshot":
            moved = [m for m in outcome.moves if m.framework == pair[0]]
            ways = {w: sum(m.direction == w for m in moved)
                    for w in ("towards the reference", "away from the reference", "neither")}
            split = ", ".join(f"{k} {w}" for w, k in ways.items() if k)
            lines.append(f"  {label}: {len(mine)} tensors, {len(moved)} moved" + (f" ({split})" if split else "")
                         + f", {failed} beyond the policy; worst drift {worst.used:.3g} of the drift allowance "
                           f"({worst.name})")
        else:
            lines.append(f"  {label}: {len(mine)} checks, {failed} failed; worst used {worst.used:.3g} of its "
                         f"allowance ({worst.quantity} {worst.name})")
    return lines


def text(outcome: Outcome, full: bool = False) -> str:
    """What the terminal shows: the changed environment facts, per pair the worst check, the moved tensors with
    their direction, and the verdict with the failing rows (``full``: every check first, as ``--table``)."""
    r = outcome.report
    lines = [render.table(r).rsplit("\nverdict:", 1)[0]] if full else []
    lines.append(f"check {outcome.directory}: model {r.model} | dtype {r.dtype} | seed {r.seed} | "
                 f"{', '.join(r.frameworks)} | now " + ", ".join(f"{k} {v}" for k, v in r.versions.items()))
    if not full:
        lines += [f"  {n}" for n in r.notes]
    if outcome.changes:
        lines.append(f"environment: {len(outcome.changes)} of {outcome.facts} facts changed (snapshot -> now):")
        lines += [f"  {c.fact}: {c.old} -> {c.new}" for c in outcome.changes]
    else:
        lines.append(f"environment: unchanged ({outcome.facts} facts)")
    lines += _pairs(outcome)
    lines += [f"  {c.framework} {c.quantity}: {c.value:.10g} | {c.against} {c.reference_value:.10g}"
              for c in r.checks if c.against == "reference" and c.quantity in ("loss", "accuracy")
              and c.value is not None]
    if outcome.moves:
        ranked = sorted(outcome.moves, key=lambda m: -(m.share if m.share is not None else math.inf))
        lines.append("moved (max |new - old|, its share of the tensor's allowance, and whether the new result is "
                     "nearer the reference than the snapshot's, in the 2-norm):")
        lines += [_move_line(m) for m in ranked[:MAX_LISTED]]
        if len(ranked) > MAX_LISTED:
            lines.append(f"  ... and {len(ranked) - MAX_LISTED} more (--json lists every one)")
    if r.timings and not full:
        lines.append("time: " + ", ".join(f"{k} {v:.2f}s" for k, v in r.timings.items()))
    lines.append(verdict_line(outcome))
    if r.failures:
        lines += render.failures(r).splitlines()[1:]
    return "\n".join(lines)


def to_dict(outcome: Outcome) -> dict:
    """The report's JSON (as ``compare --json`` writes it) with a ``check`` section."""
    d = json.loads(render.to_json(outcome.report))
    d["check"] = render._clean({
        "snapshot": outcome.directory, "verdict": outcome.verdict, "tensors_compared": outcome.compared,
        "moved": [dataclasses.asdict(m) for m in outcome.moves],
        "environment_changes": [dataclasses.asdict(c) for c in outcome.changes],
        "environment_facts": outcome.facts})
    return d


def to_json(outcome: Outcome) -> str:
    return json.dumps(to_dict(outcome), indent=2)
