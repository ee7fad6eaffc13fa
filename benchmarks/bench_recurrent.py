"""Prints the time of one forward+backward (outputs, loss, every gradient) of a recurrent model:
the reference in float64 and float32, and each framework adapter's own run in float32 and float64.

Run: .venv/bin/python benchmarks/bench_recurrent.py [--cell simple_rnn|lstm|gru] [--bidirectional]
     [--layers 1] [--batch 20 --steps 35 --size 200 --repeat 20] [--frameworks torch,tensorflow,tf1]

A framework's time includes its adapter's conversions (NumPy in, NumPy out), as `compare` runs it;
best of ``repeat`` after one warm-up.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from reference import model
from reference.params import draw_batch, init_params
from reference.spec import SequenceSpec


def _best(fn, repeat: int) -> float:
    fn()  # warm-up (tracing, allocation)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cell", choices=["simple_rnn", "lstm", "gru"], default="simple_rnn")
    ap.add_argument("--bidirectional", action="store_true")
    ap.add_argument("--layers", type=int, default=1)
    ap.add_argument("--batch", type=int, default=20)
    ap.add_argument("--steps", type=int, default=35)
    ap.add_argument("--size", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--frameworks", default="torch,tensorflow,tf1")
    a = ap.parse_args()
    spec = SequenceSpec("bench", input_size=a.size, hidden_size=a.size, output_size=10, cell=a.cell,
                        loss="softmax_ce", accuracy="argmax", num_layers=a.layers, bidirectional=a.bidirectional,
                        reset_after=True)
    rng = np.random.default_rng(0)
    params = init_params(spec, rng)
    batch = draw_batch(spec, rng, a.batch, a.steps)
    print(f"{a.cell} x{a.layers}{' bidirectional' if a.bidirectional else ''} forward+backward, "
          f"B={a.batch} T={a.steps} D=H={a.size}, best of {a.repeat}")
    for dtype in ("float64", "float32"):
        p = {k: v.astype(dtype) for k, v in params.items()}
        b = batch.astype(np.dtype(dtype))
        print(f"  reference {dtype}: {1e3 * _best(lambda: model.evaluate(spec, p, b), a.repeat):8.2f} ms")
    from adapters import registry
    from reference import stack
    spec = stack.from_sequence(spec)  # the adapters take layer stacks
    for framework in a.frameworks.split(","):
        adapter = registry.get(framework, spec)
        reason = adapter.supports(spec) if hasattr(adapter, "supports") else None
        if reason:
            print(f"  {framework}: not run ({reason})")
            continue
        for dtype in ("float32", "float64"):
            built = adapter.build(spec, params, dtype)
            ms = 1e3 * _best(lambda: adapter.run(built, spec, batch, dtype), a.repeat)
            print(f"  {framework} {dtype}: {ms:8.2f} ms")


if __name__ == "__main__":
    main()
