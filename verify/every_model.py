"""``compare --all``: every zoo model in turn, one summary line each, and one verdict over them all."""
from __future__ import annotations

import time
import traceback
from dataclasses import dataclass
from typing import Callable

from verify.report import Report


@dataclass(frozen=True)
class Outcome:
    """One model's result: its report, or the error that kept it from completing (with its traceback)."""

    model: str
    seconds: float
    report: Report | None = None
    error: str | None = None
    trace: str | None = None

    @property
    def verdict(self) -> str:
        return self.report.verdict if self.report is not None else "could not complete"


def run(dtype: str, seed: int, frameworks: tuple[str, ...] | None = None,
        progress: Callable[[str], None] = lambda s: None, models: tuple[str, ...] | None = None) -> list[Outcome]:
    """``compare`` of every zoo model (or of ``models``), each on its frameworks (those of ``frameworks`` it has,
    when given). A model that cannot complete is recorded and the others still run."""
    from verify import engine, stage, zoo
    outcomes = []
    for name in models or tuple(zoo.MODELS):
        entry = zoo.get(name)
        fws = entry.frameworks if frameworks is None else tuple(f for f in entry.frameworks if f in frameworks)
        if not fws:
            continue
        progress(f"{name}: {', '.join(fws)}")
        t = time.perf_counter()
        try:
            report = engine.compare_model(name, fws, dtype, seed, lambda s, n=name: progress(f"{n}: {s}"))
        except Exception as e:  # noqa: BLE001 - recorded as 'could not complete'; the other models still run
            where = stage.of(e)
            who = f"{where[1]}: " if where and where[1] else ""
            phase = f"{where[0]} " if where else ""
            first = (str(e).strip().splitlines() or [""])[0]
            outcomes.append(Outcome(name, time.perf_counter() - t, error=f"{who}{phase}raised {type(e).__name__}: "
                                                                          f"{first}",
                                    trace="".join(traceback.format_exception(e))))
            continue
        outcomes.append(Outcome(name, time.perf_counter() - t, report))
    return outcomes


def line(outcome: Outcome, width: int) -> str:
    """``model  verdict  checks  worst share of an allowance (where)  time``; for a mismatch, the first failure."""
    head = f"{outcome.model:<{width}}  {outcome.verdict:<10}"
    if outcome.report is None:
        return f"{head}  {outcome.error}  {outcome.seconds:.1f}s"
    r = outcome.report
    # a trained pair's allowance holds the distance between the reference's results on the two sides' weights, which
    # it uses by construction (README, "Tolerance policy"): its share is shown apart from the checks of single sides
    single = [c for c in r.checks if "~" not in c.framework] or list(r.checks)
    worst = max(single, key=lambda c: c.used)
    text = (f"{head}  {len(r.checks)} checks, {len(r.failures)} failed; worst used {worst.used:.3g} "
            f"({worst.framework} {worst.quantity} {worst.name})")
    pairs = [c.used for c in r.checks if "~" in c.framework]
    if pairs and len(single) < len(r.checks):
        text += f", pairs {max(pairs):.3g}"
    if r.failures:
        c = r.failures[0]
        step = f" step {c.first_bad_step}" if c.first_bad_step is not None else ""
        text += f"; first: {c.framework} vs {c.against} {c.quantity} {c.name}{step}"
    return f"{text}  {outcome.seconds:.1f}s"


def verdict(outcomes: list[Outcome]) -> str:
    """mismatch if any model mismatches; else could not complete if any did not; else equivalent."""
    kinds = {o.verdict for o in outcomes}
    for v in ("mismatch", "could not complete"):
        if v in kinds:
            return v
    return "equivalent"


def summary(outcomes: list[Outcome], dtype: str, seed: int) -> str:
    width = max((len(o.model) for o in outcomes), default=5)
    lines = [f"every zoo model | dtype {dtype} | seed {seed}"]
    lines += [line(o, width) for o in outcomes]
    counts = {v: sum(o.verdict == v for o in outcomes) for v in ("equivalent", "mismatch", "could not complete")}
    lines.append(f"verdict: {verdict(outcomes)} ({', '.join(f'{n} {v}' for v, n in counts.items() if n)}; "
                 f"{len(outcomes)} models)")
    return "\n".join(lines)


def to_json(outcomes: list[Outcome], dtype: str, seed: int) -> str:
    import json

    from verify import render
    models = {}
    for o in outcomes:
        models[o.model] = json.loads(render.to_json(o.report)) if o.report is not None else \
            {"verdict": "error", "model": o.model, "error": o.error, "checks": []}
        models[o.model]["seconds"] = round(o.seconds, 3)
    return json.dumps({"verdict": verdict(outcomes), "dtype": dtype, "seed": seed, "models": models}, indent=2)
