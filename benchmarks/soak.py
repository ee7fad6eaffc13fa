"""Times the soak (tests/test_soak.py: VERIFY_EXAMPLES drawn models, one test item each) over W workers and prints
examples per second per core.

    python benchmarks/soak.py [--examples N] [--workers W] [-- extra pytest arguments, e.g. --tx ssh=...]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--examples", type=int, default=8)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--dtype", default="float32")
    p.add_argument("extra", nargs="*", help="more pytest arguments (after --)")
    a = p.parse_args()
    env = {**os.environ, "VERIFY_EXAMPLES": str(a.examples), "VERIFY_SOAK_DTYPE": a.dtype}
    cmd = [sys.executable, "-m", "pytest", "-q", "tests/test_soak.py", "-n", str(a.workers), *a.extra]
    t = time.perf_counter()
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    print(out.stdout.strip().splitlines()[-1] if out.stdout.strip() else out.stderr.strip()[-500:])
    print(f"{a.examples} drawn models ({a.dtype}) on {a.workers} workers in {wall:.1f} s: "
          f"{a.examples / wall:.3f} examples/s, {a.examples / wall / a.workers:.3f} examples/s per core "
          f"(exit {out.returncode})")
    sys.exit(out.returncode)


if __name__ == "__main__":
    main()
