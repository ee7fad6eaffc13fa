"""Prints the time of one forward+backward of a simple RNN: reference (float64, float32), torch, Keras.

Run: .venv/bin/python benchmarks/bench_simple_rnn.py [--batch 20 --steps 35 --size 200 --repeat 20]
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
    ap.add_argument("--batch", type=int, default=20)
    ap.add_argument("--steps", type=int, default=35)
    ap.add_argument("--size", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=20)
    a = ap.parse_args()
    spec = SequenceSpec("bench", input_size=a.size, hidden_size=a.size, output_size=10, loss="softmax_ce",
                        accuracy="argmax")
    rng = np.random.default_rng(0)
    params = init_params(spec, rng)
    batch = draw_batch(spec, rng, a.batch, a.steps)
    print(f"simple RNN forward+backward, B={a.batch} T={a.steps} D=H={a.size}, best of {a.repeat}")
    for dtype in ("float64", "float32"):
        p = {k: v.astype(dtype) for k, v in params.items()}
        b = batch.astype(np.dtype(dtype))
        print(f"  reference {dtype}: {1e3 * _best(lambda: model.evaluate(spec, p, b), a.repeat):8.2f} ms")
    from adapters import keras3, torch_nn
    for name, adapter in (("torch", torch_nn), ("keras (eager tape)", keras3)):
        for dtype in ("float32", "float64"):
            built = adapter.build(spec, params, dtype)
            ms = 1e3 * _best(lambda: adapter.run(built, spec, batch, dtype), a.repeat)
            print(f"  {name} {dtype}: {ms:8.2f} ms")


if __name__ == "__main__":
    main()
