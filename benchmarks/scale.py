"""Scale runs: a 2-layer LSTM of 1024 units over 1000 steps, and the language model with a 10,000-word vocabulary.

For each case it prints, each measured in a new process:
- the whole verification (``compare`` of every framework against the reference: build, run, read back, the
  float64 reference, its float32 noise floor, every check): wall time, peak resident memory and the verdict;
- one forward and backward of each side alone on the same batch (the reference in float64 and in float32, torch
  and Keras in float32): the wall time of a second run, and the peak memory of both runs over the resident size
  before them (VmHWM reset, imports and data already in place; what a library keeps from the first run for the
  second counts, as in bench_recurrent.py --memory), and the reference's peak over torch's.

    python benchmarks/scale.py [--case lstm|lm|all] [--batch B]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
CASES = {"lstm": "2-layer LSTM, 1024 units, 1000 steps, 32 features, Dense 4 at every step",
         "lm": "seeds/004's language model: embedding 200, two LSTM layers of 200, 10,000-word softmax, B 20, T 35"}


def _spec_and_batch(case: str, batch: int | None) -> tuple:
    sys.path.insert(0, ROOT)
    import numpy as np

    from reference.layers import Dense, Recurrent
    from reference.params import init_params
    from reference.spec import Batch
    from reference.stack import StackSpec, state_shapes
    rng = np.random.default_rng(0)
    if case == "lstm":
        b = batch or 8
        spec = StackSpec("scale_lstm", 32, (Recurrent("lstm/0", "lstm", 1024), Recurrent("lstm/1", "lstm", 1024),
                                            Dense("head", 4)))
        x = rng.uniform(-1, 1, size=(b, 1000, 32))
        targets = rng.uniform(-1, 1, size=(b, 1000, 4))
    else:
        from verify import tutorials
        b = batch or 20
        spec = tutorials.lm_spec(hidden=200, vocabulary=10_000)
        x = rng.integers(0, 10_000, size=(b, 35))
        targets = rng.integers(0, 10_000, size=(b, 35))
    states = {n: rng.uniform(-0.5, 0.5, size=s) for n, s in state_shapes(spec, b).items()}
    params = init_params(spec, rng, 0.05)
    return spec, params, Batch(x, targets, states)


def _status_kb(field: str) -> int:
    """A /proc/self/status figure in KB (VmRSS: resident now; VmHWM: peak resident since the last reset)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def side(case: str, which: str, batch: int | None) -> dict:
    """One forward and backward of one side, in this process: seconds and peak memory added (MB)."""
    spec, params, data = _spec_and_batch(case, batch)
    import numpy as np
    if which.startswith("reference"):
        from reference import stack
        dtype = "float32" if which.endswith("float32") else "float64"
        p = {k: v.astype(dtype) for k, v in params.items()}
        d = data.astype(np.dtype(dtype))
        run = lambda: stack.evaluate(spec, p, d)  # noqa: E731
    else:
        from adapters import registry
        adapter = registry.get(which, spec)
        model = adapter.build(spec, params, "float32")
        run = lambda: adapter.run(model, spec, data, "float32")  # noqa: E731
    import gc
    gc.collect()
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")  # resets the peak resident set (VmHWM) to the current one
    before = _status_kb("VmRSS")
    run()  # warm-up (graph tracing, allocator pools): its memory counts, its time does not
    t = time.perf_counter()
    run()
    seconds = time.perf_counter() - t
    return {"side": which, "seconds": seconds, "peak_added_mb": max(_status_kb("VmHWM") - before, 0) / 1024}


def verification(case: str, batch: int | None) -> dict:
    """The whole verification of torch and Keras against the reference, as ``compare`` runs it (engine calls)."""
    spec, params, data = _spec_and_batch(case, batch)
    from verify import engine
    t = time.perf_counter()
    checks = []
    for fw in ("torch", "tensorflow"):
        run = engine.run_framework(fw, spec, params, data, "float32")
        fw_checks, _, _ = engine.check_run(spec, data, "float32", run, built_from=params)
        checks += fw_checks
    seconds = time.perf_counter() - t
    bad = [f"{c.framework} {c.quantity} {c.name}" for c in checks if not c.ok]
    return {"side": "compare (torch and Keras vs reference, float32)", "seconds": seconds,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "verdict": "equivalent" if not bad else "mismatch: " + ", ".join(bad[:3]), "checks": len(checks)}


def _child(args: list[str]) -> dict:
    out = subprocess.run([sys.executable, os.path.abspath(__file__), *args], capture_output=True, text=True,
                         cwd=ROOT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    if out.returncode != 0:
        return {"side": " ".join(args), "error": (out.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--case", default="all", choices=(*CASES, "all"))
    p.add_argument("--batch", type=int, default=None)
    p.add_argument("--child", nargs=2, metavar=("KIND", "WHICH"), help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        kind, which = a.child
        result = verification(which, a.batch) if kind == "compare" else side(which.split(":")[0],
                                                                             which.split(":")[1], a.batch)
        print(json.dumps(result))
        return
    for case in (CASES if a.case == "all" else (a.case,)):
        extra = ["--batch", str(a.batch)] if a.batch else []
        print(f"{case}: {CASES[case]}")
        sides = {w: _child(["--child", "side", f"{case}:{w}", *extra])
                 for w in ("reference-float64", "reference-float32", "torch", "tensorflow")}
        for w, r in sides.items():
            if "error" in r:
                print(f"  {w:<18} error: {r['error']}")
            else:
                print(f"  {w:<18} forward+backward {r['seconds']:8.2f} s   peak memory added {r['peak_added_mb']:8.0f} MB")
        ref, torch = sides["reference-float64"], sides["torch"]
        if "error" not in ref and "error" not in torch and torch["peak_added_mb"]:
            print(f"  reference float64 / torch float32: time {ref['seconds'] / torch['seconds']:.2f}x, "
                  f"peak memory {ref['peak_added_mb'] / torch['peak_added_mb']:.2f}x (target <= 2x)")
        r = _child(["--child", "compare", case, *extra])
        if "error" in r:
            print(f"  compare: error: {r['error']}")
        else:
            print(f"  compare: {r['verdict']} ({r['checks']} checks) in {r['seconds']:.1f} s, "
                  f"process peak {r['peak_mb']:.0f} MB")


if __name__ == "__main__":
    main()
