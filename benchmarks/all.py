"""Every speed and scale figure of the README in one run: the machine, then each benchmark in turn, then its verdicts.

Run: .venv/bin/python benchmarks/all.py [--threads 1] [--big]

In order, each in its own process (so that one library's thread pools and caches do not slow the next):
``bench_recurrent.py --memory`` (reference / torch time and peak memory, every cell), ``bench_frameworks.py``
(each adapter / its framework's own script, and Keras / torch), ``scale.py --case lm`` (the 10,000-word
language model: each side's time and memory, and the whole compare). ``--big`` adds ``scale.py --case lstm``
(2 layers of 1024 units over 1000 steps: about half an hour on 2 cores). The header names the machine, so that a
table copied into the README says where it was measured.
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def machine() -> str:
    """CPU model, cores, memory, load and the libraries' versions: where the figures below were measured."""
    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), cpu)
        with open("/proc/meminfo") as fh:
            mem = f"{int(fh.readline().split()[1]) / 2**20:.0f} GiB"
    except OSError:  # not Linux
        mem = "?"
    import numpy as np
    out = subprocess.run([sys.executable, "-c", "import torch, tensorflow as tf; print(torch.__version__, "
                          "tf.__version__)"], capture_output=True, text=True, env={**os.environ,
                                                                                   "TF_CPP_MIN_LOG_LEVEL": "3"})
    torch_v, tf_v = (out.stdout.split() + ["?", "?"])[:2]
    return (f"machine: {cpu}, {os.cpu_count()} cores, {mem}; load average {os.getloadavg()[0]:.1f}; "
            f"python {platform.python_version()}, numpy {np.__version__}, torch {torch_v}, tensorflow {tf_v}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=0, help="bench_recurrent.py's --threads (0: libraries' defaults)")
    ap.add_argument("--big", action="store_true", help="also the 2-layer 1024-unit LSTM over 1000 steps")
    a = ap.parse_args()
    runs = [["bench_recurrent.py", "--memory", "--threads", str(a.threads)], ["bench_frameworks.py"],
            ["scale.py", "--case", "lm"]] + ([["scale.py", "--case", "lstm"]] if a.big else [])
    print(machine(), flush=True)
    verdicts, failed = [], 0
    for args in runs:
        print(f"\n$ python benchmarks/{' '.join(args)}", flush=True)
        t = time.perf_counter()
        proc = subprocess.Popen([sys.executable, os.path.join(HERE, args[0]), *args[1:]], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        for line in proc.stdout:
            print(line, end="", flush=True)
            if line.startswith(("targets met", "  compare:")):
                verdicts.append(f"{args[0]}: {line.strip()}")
        failed += proc.wait() != 0
        print(f"({args[0]} took {time.perf_counter() - t:.0f} s, exit {proc.returncode})", flush=True)
    print("\nsummary:\n  " + "\n  ".join(verdicts or ["(no verdict lines)"]))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
