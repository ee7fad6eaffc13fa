"""False alarms on correct code: ``compare`` over many seeds of the trained models, in both dtypes.

    python benchmarks/seed_sweep.py [--seeds 0-199] [--models attention,seq2seq,...] [--dtypes float32,float64]
                                    [--optimizers own,adam,...] [--workers N] [--out sweep.jsonl]

Every run is a correct port (the shipped adapters), so every mismatch is a false alarm. Prints, per
model and dtype, the runs, the false alarms (with their seeds and failing checks), and the largest
share of an allowance (`used`) reached by a framework's own checks (against the reference, its SGD
and its steps), with where, and apart from it the largest of the framework-vs-framework checks
(for trained models these include the reference's own drift between the two sets of trained
weights, so they sit near 1 by construction whenever that drift dominates). Runs are spread over ``--workers``
processes; each result is appended to ``--out`` as it arrives, so a long sweep can be read while it runs.
``--optimizers``: train with each of these (``compare --optimizer``; ``own``: the model's own, the default).
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import time

TRAINED = ("attention", "seq2seq", "attention_lstm", "bidirectional_classifier")


def _seeds(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out += list(range(int(lo), int(hi or lo) + 1))
    return out


def _one(job: tuple[str, str, int, str]) -> dict:
    from verify import engine, zoo
    model, dtype, seed, optimizer = job
    t = time.perf_counter()
    report = engine.compare_model(model, zoo.get(model).frameworks, dtype, seed,
                                  optimizer=None if optimizer == "own" else optimizer)
    own = max((c for c in report.checks if "~" not in c.framework), key=lambda c: c.used)
    pair = max((c for c in report.checks if "~" in c.framework), key=lambda c: c.used, default=own)
    return {"model": model, "dtype": dtype, "seed": seed, "optimizer": optimizer, "verdict": report.verdict,
            "used": own.used,
            "where": f"{own.framework} vs {own.against}: {own.quantity} {own.name}", "pair_used": pair.used,
            "pair_where": f"{pair.framework}: {pair.quantity} {pair.name}",
            "failures": [f"{c.framework} vs {c.against}: {c.quantity} {c.name} used {c.used:.3g}"
                         for c in report.failures], "seconds": time.perf_counter() - t}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="0-199")
    p.add_argument("--models", default=",".join(TRAINED))
    p.add_argument("--dtypes", default="float32,float64")
    p.add_argument("--optimizers", default="own")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--out", default="seed_sweep.jsonl")
    p.add_argument("--summarise", nargs="*", metavar="JSONL", help="only print the summary of earlier sweeps")
    a = p.parse_args()
    if a.summarise:
        summarise([json.loads(line) for path in a.summarise for line in open(path)])
        return
    jobs = [(m, d, s, o) for s in _seeds(a.seeds) for m in a.models.split(",") for d in a.dtypes.split(",")
            for o in a.optimizers.split(",")]
    rows = []
    t = time.perf_counter()
    # a fresh process every few runs: each run builds Keras models and traces tf.functions that are never freed
    with multiprocessing.get_context("spawn").Pool(a.workers, maxtasksperchild=25) as pool, open(a.out, "a") as f:
        for row in pool.imap_unordered(_one, jobs):
            rows.append(row)
            f.write(json.dumps(row) + "\n")
            f.flush()
    wall = time.perf_counter() - t
    print(f"{len(rows)} runs in {wall:.0f} s on {a.workers} workers")
    summarise(rows)


def summarise(rows: list[dict]) -> None:
    def key_of(r: dict) -> tuple[str, str, str]:
        return r["model"], r["dtype"], r.get("optimizer", "own")
    for key in sorted({key_of(r) for r in rows}):
        mine = [r for r in rows if key_of(r) == key]
        alarms = [r for r in mine if r["verdict"] != "equivalent"]
        worst = max(mine, key=lambda r: r["used"])
        pair = max(mine, key=lambda r: r.get("pair_used", 0.0))
        print(f"{key[0]:<25} {key[1]} {key[2]}: {len(mine)} runs, {len(alarms)} false alarms, largest used "
              f"{worst['used']:.3g} (seed {worst['seed']}, {worst['where']}); pairs {pair.get('pair_used', 0):.3g} "
              f"(seed {pair['seed']}, {pair.get('pair_where', '-')})")
        for r in alarms:
            print(f"    seed {r['seed']}: " + "; ".join(r["failures"]))


if __name__ == "__main__":
    main()
