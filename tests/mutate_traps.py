"""Reintroduce each porting trap into a copy of the code and show which trap tests then fail.

Run from the repository root: ``python tests/mutate_traps.py`` (about 2 minutes). Each mutation is
one textual change of the adapters or the reference; a trap test that stays green under its mutation
would be a test that cannot fail. Exit code 1 when some mutation is caught by no test.

``python tests/mutate_traps.py --verdicts [--sweep N] [-n WORKERS]`` measures the verdicts themselves
instead: every mutant of tests/mutants.py through ``compare`` (sensitivity: exit 1; localisation: the
side blamed; diagnosis: the bug named), and N drawn models of correct code (false alarms), spread over
the cores with pytest-xdist. Exit code 1 when any figure falls short; every row (with the report's notes)
is kept in verdicts.jsonl.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

# (trap, file, text, replacement, test files whose trap tests must catch it)
MUTATIONS = [
    ("forget_bias dropped: TF1 cells built with forget_bias 0", "adapters/tf1_cells.py",
     "forget_bias=spec.forget_bias", "forget_bias=0.0", "tests/test_tf1_cells.py"),
    ("torch's two LSTM biases: the canonical bias copied into bias_ih and bias_hh", "adapters/tables.py",
     "out[extra] = second", "out[extra] = value", "tests/test_torch_nn.py"),
    ("GRU reset placement swapped in the reference", "reference/gru.py",
     "if spec.reset_after:", "if not spec.reset_after:", "tests/test_gru.py"),
    ("gate order: torch GRU r, z, n not permuted", "adapters/tables.py",
     "_SWAP01 = (1, 0, 2)", "_SWAP01 = (0, 1, 2)", "tests/test_gru.py tests/test_torch_nn.py"),
    ("gate order: TF1 GRUCell r, u read as z, r", "adapters/tf1_tables.py",
     '_GRU_BLOCKS = (("gates/kernel", 1, 2), ("gates/kernel", 0, 2),',
     '_GRU_BLOCKS = (("gates/kernel", 0, 2), ("gates/kernel", 1, 2),', "tests/test_gru.py"),
    ("gate order: TF1 LSTM i, j, f, o read as i, f, g, o", "adapters/tf1_tables.py",
     '("kernel", 0, 4), ("kernel", 2, 4), ("kernel", 1, 4), ("kernel", 3, 4))',
     '("kernel", 0, 4), ("kernel", 1, 4), ("kernel", 2, 4), ("kernel", 3, 4))', "tests/test_lstm.py"),
    ("gate order: Keras LSTM i, f, c, o read as i, c, f, o", "adapters/tables.py",
     "KERAS_LSTM = KERAS_SIMPLE_RNN",
     'KERAS_LSTM = tuple(TensorMap(m.canonical, m.framework, "swap_fg") for m in KERAS_SIMPLE_RNN)\n'
     'TRANSFORMS["swap_fg"] = (lambda a: permute_blocks(a, (0, 2, 1, 3)),) * 2', "tests/test_lstm.py"),
    ("bidirectional last output: Keras's and TF1's semantics swapped in the reference", "reference/stack.py",
     'layer.last_output == "final"', 'layer.last_output == "last_step"', "tests/test_model.py"),
    ("hard_sigmoid: Keras 3's defined as Keras 2's 0.2 x + 0.5", "reference/activations.py",
     '"hard_sigmoid": (lambda z: np.clip(z + 3.0, 0.0, 6.0) / 6.0,',
     '"hard_sigmoid": (lambda z: np.clip(0.2 * z + 0.5, 0.0, 1.0),', "tests/test_lstm.py"),
    ("mask ignored by the reference", "reference/stack.py",
     "    if batch.lengths is None:\n        return None", "    if True:\n        return None", "tests/test_recurrent.py"),
]
COPY = ("adapters", "reference", "verify", "tests", "pyproject.toml")


def main() -> int:
    root = Path.cwd()
    uncaught = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name in COPY:
            (shutil.copytree if (root / name).is_dir() else shutil.copy)(root / name, Path(tmp) / name)
        for trap, path, old, new, tests in MUTATIONS:
            target = Path(tmp) / path
            source = target.read_text()
            if old not in source:
                print(f"{trap}: {path} no longer contains the text to mutate; update this script")
                return 2
            target.write_text(source.replace(old, new))
            out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "trap",
                                  *tests.split()], cwd=tmp, capture_output=True, text=True).stdout
            target.write_text(source)
            failed = [line.split()[1] for line in out.splitlines() if line.startswith("FAILED")]
            uncaught += not failed
            print(f"{trap}: {'caught by' if failed else 'NOT CAUGHT'} {len(failed)} test(s)")
            for test in failed:
                print(f"  {test}")
    return 1 if uncaught else 0


def verdicts(sweep: int, workers: str) -> int:
    """Run tests/test_mutants.py over the cores and print sensitivity, localisation, diagnosis and false alarms."""
    with tempfile.TemporaryDirectory() as out:
        env = {**os.environ, "VERIFY_MUTANTS": "1", "VERIFY_MUTANT_RESULTS": out, "VERIFY_SWEEP": str(sweep)}
        subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", workers,
                        "tests/test_mutants.py"], env=env, capture_output=True, text=True)
        rows = [json.loads(p.read_text()) for p in sorted(Path(out).glob("*.json"))]
    Path("verdicts.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))  # every row, for a closer look
    mutants = [r for r in rows if not r["id"].startswith("sweep:")]
    sweep_rows = [r for r in rows if r["id"].startswith("sweep:")]
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script: the repository root
    from tests.mutants import MUTANTS
    lost = sorted({m.id for m in MUTANTS} - {r["id"] for r in mutants})
    # a mutant that could not be applied or run has no row: it counts as missed, not as absent from the figures
    mutants += [{"id": i, "caught": False, "exit": "none", "localised": False, "blamed": "-", "diagnosed": False,
                 "expects_diagnosis": False, "first": "NO RESULT: not applied or not run (see tests/mutants.py)"}
                for i in lost]
    for r in mutants:
        marks = "".join(("exit 1 " if r["caught"] else f"EXIT {r['exit']} ",
                         "blamed " if r["localised"] else f"BLAMED {r['blamed']} ",
                         ("named" if r["diagnosed"] else "NOT NAMED") if r["expects_diagnosis"] else "-"))
        print(f"{r['id']:<34} {marks:<30} {r['first']}")
    caught = sum(r["caught"] for r in mutants)
    localised = sum(r["localised"] for r in mutants)
    named = sum(r["diagnosed"] for r in mutants)
    expecting = sum(r["expects_diagnosis"] for r in mutants)
    alarms = [r for r in sweep_rows if r["exit"] != 0]
    n = max(len(mutants), 1)
    print(f"mutants: {len(mutants)}; sensitivity (exit 1) {caught}/{len(mutants)} = {caught / n:.0%}; "
          f"localisation (the side at fault) {localised}/{len(mutants)} = {localised / n:.0%}; "
          f"diagnosis (the bug named) {named}/{expecting} = {named / max(expecting, 1):.0%}")
    print(f"false alarms on correct code: {len(alarms)} of {len(sweep_rows)} drawn models"
          + "".join(f"\n  {r['id']}: exit {r['exit']} {r['first']}" for r in alarms))
    return 0 if caught == len(mutants) and named >= 0.9 * expecting and not alarms else 1


if __name__ == "__main__":
    args = argparse.ArgumentParser(description="mutation testing of the trap tests, or of the verdicts")
    args.add_argument("--verdicts", action="store_true", help="measure compare's verdicts on tests/mutants.py")
    args.add_argument("--sweep", type=int, default=40, help="drawn models of correct code (false alarms)")
    args.add_argument("-n", dest="workers", default="auto", help="pytest-xdist workers (default: every core)")
    a = args.parse_args()
    sys.exit(verdicts(a.sweep, a.workers) if a.verdicts else main())
