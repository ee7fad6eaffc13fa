"""Times one forward+backward (outputs, loss, every gradient) of the reference beside torch, per model.

Run: .venv/bin/python benchmarks/bench_recurrent.py [--models simple_rnn,lstm,gru,stacked,bidirectional]
     [--batch 20 --steps 35 --size 200 --repeat 15] [--threads N] [--memory] [--frameworks torch,tensorflow,tf1]

For each model (one layer of each cell; ``stacked``: 2 LSTM layers; ``bidirectional``: one bidirectional
LSTM layer; all with a Dense head and softmax cross-entropy) it prints the reference in float32 and
float64 (``model.evaluate``) and each framework adapter's run in float32 and float64 (its conversions
included, NumPy in and out, as ``compare`` runs it): the same work on both sides, every parameter's
and the inputs' gradient. After one warm-up each, the contenders run in turn, ``repeat`` rounds;
times are medians over the rounds, and a ratio is the median over the rounds of the two times
measured in the same round, so that a change of machine load between rounds cancels.

Targets (issue 12): reference float32 <= 1.25 x torch float32; reference float64 <= 2 x torch float32.
``--threads N`` sets the BLAS/OpenMP threads of NumPy and torch alike (the default leaves both at
their own defaults). ``--memory``: peak memory of one run (growth of the peak resident set over the
resident set before them, two runs in a fresh process per contender, so that what a library keeps
between runs counts).
"""
from __future__ import annotations

import argparse
import os
import time

TARGETS = {"float32": 1.25, "float64": 2.0}  # reference dtype -> allowed multiple of torch float32
MODELS = ("simple_rnn", "lstm", "gru", "stacked", "bidirectional")


def _args() -> argparse.Namespace:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--cell", choices=MODELS[:3], help="shorthand for --models CELL")
    ap.add_argument("--batch", type=int, default=20)
    ap.add_argument("--steps", type=int, default=35)
    ap.add_argument("--size", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--threads", type=int, default=0, help="BLAS/OpenMP threads for NumPy and torch (0: defaults)")
    ap.add_argument("--memory", action="store_true")
    ap.add_argument("--frameworks", default="torch")
    ap.add_argument("--child-memory", help=argparse.SUPPRESS)  # "MODEL|CONTENDER": one measurement, internal
    a = ap.parse_args()
    if a.cell:
        a.models = a.cell
    return a


def _spec(name: str, size: int):
    from reference.spec import SequenceSpec
    cell = name if name in ("simple_rnn", "lstm", "gru") else "lstm"
    return SequenceSpec("bench", input_size=size, hidden_size=size, output_size=10, cell=cell, loss="softmax_ce",
                        accuracy="argmax", num_layers=2 if name == "stacked" else 1,
                        bidirectional=name == "bidirectional", reset_after=True)


def _contenders(name: str, a: argparse.Namespace) -> dict:
    """Contender name ("torch float32", "reference float64", ...) -> a call running one forward+backward."""
    import numpy as np

    from adapters import registry
    from reference import model, stack
    from reference.params import draw_batch, init_params
    spec = _spec(name, a.size)
    rng = np.random.default_rng(0)
    params = init_params(spec, rng)
    batch = draw_batch(spec, rng, a.batch, a.steps)
    calls = {}
    layered = stack.from_sequence(spec)  # the adapters take layer stacks
    for framework in a.frameworks.split(","):
        adapter = registry.get(framework, layered)
        reason = adapter.supports(layered) if hasattr(adapter, "supports") else None
        if reason:
            print(f"  {framework}: not run ({reason})")
            continue
        for dtype in ("float32", "float64"):
            built = adapter.build(layered, params, dtype)
            calls[f"{framework} {dtype}"] = (lambda ad=adapter, m=built, d=dtype: ad.run(m, layered, batch, d))
    for dtype in ("float32", "float64"):
        p = {k: v.astype(dtype) for k, v in params.items()}
        b = batch.astype(np.dtype(dtype))
        calls[f"reference {dtype}"] = (lambda p=p, b=b: model.evaluate(spec, p, b))
    return calls


def _rounds(calls: dict, repeat: int) -> dict[str, list[float]]:
    for fn in calls.values():
        fn()  # warm-up (tracing, allocation)
    times: dict[str, list[float]] = {k: [] for k in calls}
    names = list(calls)
    for r in range(repeat):
        for k in names[r % len(names):] + names[:r % len(names)]:  # rotate who runs first
            t = time.perf_counter()
            calls[k]()
            times[k].append(time.perf_counter() - t)
    return times


def _vm(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


def _child_memory(a: argparse.Namespace) -> None:
    """In a fresh process: the peak resident set over two runs of one contender, above the resident set
    before them (inputs built, libraries loaded), so that what a library keeps between runs counts."""
    import gc
    name, contender = a.child_memory.split("|")
    fn = _contenders(name, a)[contender]
    gc.collect()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets the peak (VmHWM) to the current resident set
    before = _vm("VmRSS")
    fn()
    fn()
    print(_vm("VmHWM") - before)


def _peak_memory(name: str, contenders: list[str], a: argparse.Namespace) -> dict[str, float]:
    """MB per contender, each measured by ``_child_memory`` in its own process (Linux)."""
    import subprocess
    import sys
    out = {}
    for k in contenders:
        cmd = [sys.executable, __file__, "--child-memory", f"{name}|{k}", "--batch", str(a.batch), "--steps",
               str(a.steps), "--size", str(a.size), "--frameworks", a.frameworks, "--threads", str(a.threads)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        lines = proc.stdout.split()
        out[k] = int(lines[-1]) / 1e6 if proc.returncode == 0 and lines else float("nan")
    return out


def main() -> None:
    a = _args()
    if a.threads:  # before NumPy and torch load their thread pools
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(a.threads)
    import numpy as np
    import torch
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.child_memory:
        _child_memory(a)
        return
    print(f"forward+backward, B={a.batch} T={a.steps} D=H={a.size}; medians of {a.repeat} rounds after a warm-up; "
          f"threads: numpy {os.environ.get('OPENBLAS_NUM_THREADS', 'default')}, torch {torch.get_num_threads()}; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    head = (f"{'model':<14}{'ref f32':>9}{'ref f64':>9}{'torch f32':>11}{'torch f64':>11}"
            f"{'f32/torch32':>13}{'':>6}{'f64/torch32':>13}{'':>6}")
    print(head + "   (ms; targets: f32 <= 1.25x, f64 <= 2x torch f32)")
    verdicts = []
    for name in a.models.split(","):
        calls = _contenders(name, a)
        times = _rounds(calls, a.repeat)
        med = {k: 1e3 * float(np.median(v)) for k, v in times.items()}
        row = f"{name:<14}{med['reference float32']:9.2f}{med['reference float64']:9.2f}"
        row += f"{med.get('torch float32', float('nan')):11.2f}{med.get('torch float64', float('nan')):11.2f}"
        for dtype, limit in TARGETS.items():
            if "torch float32" not in times:
                row += f"{'':>19}"
                continue
            ratio = float(np.median(np.array(times[f"reference {dtype}"]) / np.array(times["torch float32"])))
            ok = ratio <= limit
            verdicts.append(ok)
            row += f"{ratio:12.2f}x {'PASS' if ok else 'FAIL':>5}"
        print(row)
        for k in calls:
            if not k.startswith(("reference", "torch")):
                print(f"  {k}: {med[k]:.2f} ms")
        if a.memory:
            mem = _peak_memory(name, list(calls), a)
            print("  peak memory (MB, resident-set growth over two runs in a fresh process): "
                  + ", ".join(f"{k} {v:.1f}" for k, v in mem.items()))
    print(f"targets met: {sum(verdicts)} of {len(verdicts)}")


if __name__ == "__main__":
    main()
