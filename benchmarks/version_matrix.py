"""Version matrix: every zoo model snapshotted under one framework release and checked under another (snapshot + check).

    .venv/bin/python benchmarks/version_matrix.py [--models lstm,gru,...] [--frameworks tensorflow,...]
                                                  [--dtype float32|float64] [--out DIR] [--fresh] [--no-install]

Environments (virtual environments, created here when missing, reused otherwise; the project itself runs from this
checkout, ``python -m verify`` in the repository root, so nothing is installed into them from it: its numpy>=2
requirement would fight TF 2.15's numpy<2):

* ``main``: the project's ``.venv`` (tensorflow-cpu 2.21.0 / Keras 3.15.1, torch 2.13.0 CPU, numpy 2.4.6); not
  created here (README's set-up line makes it);
* ``torch2141``: ``.venvs/torch2141``, torch 2.14.1 (the only other torch release this machine's package mirror
  holds besides the pinned 2.13.0; a CUDA build: 2.9 GB of wheels) and numpy 2.4.6;
* ``tf215``: ``.venvs/tf215``, tensorflow-cpu 2.15.1, whose tf.keras is Keras 2 (numpy 1.26.4); the Keras stack
  adapter runs there through ``adapters/keras_compat.py``. pytest and hypothesis come along so that
  ``tests/test_keras2_stack.py`` can run under Keras 2 (they change no result).

For each framework the pairs (snapshot environment -> check environment) are the same environment twice (the
control: a rerun must be bit for bit) and the two directions between the releases. A snapshot is taken once per
(environment, model, framework) with ``--frameworks`` that one framework and reused by every pair that starts there.
Each cell is the largest drift of a framework's tensor from the snapshot as a share of its drift allowance
(``verify/check.py``), with how many moved tensors went towards / away from the float64 reference; ``0`` is bit for
bit; ``n/a`` says why the pair could not run (the first line of the error). The ``reference`` rows give the largest
normwise drift of the float64 reference itself (limit 1e-12), which moves only when numpy (or this code) changes.
Prints the matrix as Markdown and writes every cell to DIR/matrix.json.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
TIMEOUT = 1800  # one snapshot or check; the trained models train first


@dataclass(frozen=True)
class Env:
    name: str
    path: str                       # relative to ROOT
    packages: tuple[str, ...]       # what ``pip install`` puts in it (empty: made elsewhere, never created here)
    frameworks: tuple[str, ...]     # what the verifier is asked to run in it
    label: dict[str, str] = field(default_factory=dict)  # framework -> release, for column titles

    @property
    def python(self) -> str:
        return os.path.join(ROOT, self.path, "bin", "python")


ENVS = {
    "main": Env("main", ".venv", (), ("tensorflow", "tf1", "torch"),
                {"tensorflow": "TF 2.21 / Keras 3.15", "tf1": "TF 2.21", "torch": "torch 2.13.0"}),
    "torch2141": Env("torch2141", ".venvs/torch2141", ("torch==2.14.1", "numpy==2.4.6"), ("torch",),
                     {"torch": "torch 2.14.1"}),
    "tf215": Env("tf215", ".venvs/tf215", ("tensorflow-cpu==2.15.1", "pytest==9.2.0", "hypothesis==6.170.15"),
                 ("tensorflow", "tf1"),
                 {"tensorflow": "TF 2.15 / Keras 2.15", "tf1": "TF 2.15"}),
}
# framework -> (snapshot env, check env) pairs: the control first, then both directions
PAIRS = {
    "torch": (("main", "main"), ("main", "torch2141"), ("torch2141", "main")),
    "tensorflow": (("main", "main"), ("main", "tf215"), ("tf215", "main")),
    "tf1": (("main", "main"), ("main", "tf215"), ("tf215", "main")),
}


def _du(path: str) -> int:
    return int(subprocess.run(["du", "-sb", path], capture_output=True, text=True).stdout.split()[0])


def ensure(env: Env, install: bool) -> dict:
    """The environment, created and installed when missing (timed); its size on disk."""
    full = os.path.join(ROOT, env.path)
    info: dict = {"path": env.path}
    if not os.path.exists(env.python):
        if not env.packages or not install:
            info["missing"] = True
            return info
        t = time.perf_counter()
        subprocess.run([sys.executable if env.name == "main" else "python3", "-m", "venv", full], check=True)
        subprocess.run([env.python, "-m", "pip", "install", "-q", *env.packages], check=True)
        info["install_s"] = round(time.perf_counter() - t, 1)
    info["bytes"] = _du(full)
    code = ("import importlib.metadata as m\nfor p in ('numpy', 'torch', 'tensorflow-cpu', 'keras', 'h5py'):\n"
            "    try: print(p, m.version(p))\n    except m.PackageNotFoundError: pass")
    out = subprocess.run([env.python, "-c", code], capture_output=True, text=True)
    info["versions"] = dict(line.split() for line in out.stdout.splitlines())
    return info


def _run(args: list[str]) -> tuple[int, str]:
    """(exit code, the last line of stderr) of one verifier command, run in the repository root."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ROOT}
    try:
        out = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT, env=env)
    except subprocess.TimeoutExpired:
        return 124, f"timed out after {TIMEOUT} s"
    lines = [l for l in out.stderr.splitlines() if l.strip() and not l.startswith(("WARNING", "W0000", "I0000"))]
    return out.returncode, (lines[-1] if lines else "")


def snapshot(env: Env, model: str, framework: str, out: str, fresh: bool, dtype: str = "float32"
             ) -> tuple[str | None, str]:
    """The snapshot directory (None when it could not be taken) and why not."""
    # float32 keeps the directory names of the first runs, so that their snapshots are reused
    directory = os.path.join(out, "snapshots", env.name, model, framework, *([] if dtype == "float32" else [dtype]))
    if os.path.exists(os.path.join(directory, "snapshot.json")) and not fresh:
        return directory, ""
    shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(os.path.dirname(directory), exist_ok=True)
    rc, last = _run([env.python, "-m", "verify", "snapshot", "--model", model, "--frameworks", framework,
                     "--dtype", dtype, "-o", directory, "--quiet"])
    return (directory, "") if rc in (0, 1) and os.path.exists(os.path.join(directory, "snapshot.json")) else \
        (None, f"snapshot exit {rc}: {last}")


def check(env: Env, directory: str, framework: str, out: str, tag: str) -> dict:
    """One cell: the largest drift share of the framework's tensors, directions, verdict, the reference's drift."""
    path = os.path.join(out, "checks", tag + ".json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if os.path.exists(path):
        os.remove(path)
    rc, last = _run([env.python, "-m", "verify", "check", directory, "--json", path, "--quiet"])
    if not os.path.exists(path):
        return {"error": f"check exit {rc}: {last}"}
    with open(path) as f:
        data = json.load(f)
    if data.get("verdict") == "error":
        e = data.get("error", {})
        return {"error": f"check exit {rc}: {e.get('phase')} {e.get('type')}: {e.get('message', '')[:160]}"}
    moved = [m for m in data["check"]["moved"] if m["framework"] == framework]
    shares = [m["share"] for m in moved if m.get("share") is not None]
    ways = {w: sum(m["direction"] == w for m in moved) for w in ("towards the reference", "away from the reference")}
    ref = [c["norm_rel"] for c in data["checks"] if c["framework"].startswith("reference") and c["against"] == "snapshot"]
    worst = max(moved, key=lambda m: m.get("share") or 0.0, default=None)
    return {"exit": rc, "verdict": data["check"]["verdict"], "moved": len(moved), "compared": data["check"]["tensors_compared"],
            "share": max(shares, default=0.0), "towards": ways["towards the reference"],
            "away": ways["away from the reference"], "worst": f"{worst['quantity']} {worst['name']}" if worst else "",
            "worst_max_abs": worst["max_abs"] if worst else 0.0,
            "reference_drift": max(ref, default=0.0),
            "changes": [f"{c['fact']}: {c['old']} -> {c['new']}" for c in data["check"]["environment_changes"]]}


def cell_text(cell: dict) -> str:
    if "error" in cell:
        return "n/a: " + cell["error"][:120].replace("|", "/")
    if cell["moved"] == 0:
        text = "0"
    else:
        text = f"{cell['share']:.3g} ({cell['moved']}/{cell['compared']} moved: {cell['towards']} towards, " \
               f"{cell['away']} away)"
    return text if cell["verdict"] in ("unchanged", "moved within the policy") else f"**{cell['verdict']}** {text}"


def main() -> int:
    from verify import zoo
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", help="comma-separated zoo models (default: every one `python -m verify list` shows)")
    p.add_argument("--out", default=os.path.join(ROOT, ".venvs", "version_matrix"), help="snapshots, checks, matrix")
    p.add_argument("--frameworks", help="comma-separated frameworks (default: each model's zoo frameworks)")
    p.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    p.add_argument("--fresh", action="store_true", help="take every snapshot again")
    p.add_argument("--no-install", action="store_true", help="skip environments that do not exist yet")
    args = p.parse_args()
    models = args.models.split(",") if args.models else [m for m in zoo.MODELS]
    only = set(args.frameworks.split(",")) if args.frameworks else None
    suffix = "" if args.dtype == "float32" else f"@{args.dtype}"
    envs = {name: ensure(env, not args.no_install) for name, env in ENVS.items()}
    for name, info in envs.items():
        print(f"env {name}: {info}", file=sys.stderr, flush=True)
    cells: dict = {}
    started = time.perf_counter()
    for model in models:
        for fw in zoo.MODELS[model].frameworks:
            if only is not None and fw not in only:
                continue
            for src, dst in PAIRS.get(fw, ()):
                tag = f"{model}/{fw}/{src}->{dst}{suffix}"
                a, b = ENVS[src], ENVS[dst]
                if envs[src].get("missing") or envs[dst].get("missing"):
                    cells[tag] = {"error": "environment not installed"}
                    continue
                directory, why = snapshot(a, model, fw, args.out, args.fresh, args.dtype)
                cells[tag] = check(b, directory, fw, args.out, tag.replace("/", "__")) if directory else {"error": why}
                print(f"{tag}: {cell_text(cells[tag])} ({time.perf_counter() - started:.0f} s)", file=sys.stderr,
                      flush=True)
    name = "matrix.json" if only is None and not suffix else \
        f"matrix-{'-'.join(sorted(only or ['all']))}{suffix.replace('@', '-')}.json"  # a partial run: its own file
    path = os.path.join(args.out, name)
    if os.path.exists(path) and (args.models or only):  # partial runs (other models) accumulate in their file
        with open(path) as f:
            cells = {**json.load(f).get("cells", {}), **cells}
    with open(path, "w") as f:
        json.dump({"environments": envs, "dtype": args.dtype, "cells": cells}, f, indent=1)
    for fw, pairs in PAIRS.items():
        rows = [m for m in models if fw in zoo.MODELS[m].frameworks and f"{m}/{fw}/{pairs[0][0]}->{pairs[0][1]}{suffix}"
                in cells]
        if not rows:
            continue
        titles = [f"{ENVS[s].label[fw]} -> {ENVS[d].label[fw]}" for s, d in pairs]
        print(f"\n{fw} ({args.dtype}): max drift as a share of its allowance (moved tensors: towards / away from the "
              "reference)\n")
        print("| model | " + " | ".join(titles) + " |")
        print("| --- |" + " --- |" * len(pairs))
        for m in rows:
            print(f"| {m} | " + " | ".join(cell_text(cells[f"{m}/{fw}/{s}->{d}{suffix}"]) for s, d in pairs) + " |")
        refs = [[cells[f"{m}/{fw}/{s}->{d}{suffix}"].get("reference_drift") for s, d in pairs] for m in rows]
        worst = [max((r[i] for r in refs if r[i] is not None), default=None) for i in range(len(pairs))]
        print("| reference (largest normwise drift, any model) | "
              + " | ".join("n/a" if w is None else f"{w:.2g}" for w in worst) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
