"""Times each framework adapter's run beside that framework's own best (a minimal hand-written script), per model.

Run: .venv/bin/python benchmarks/bench_frameworks.py [--models simple_rnn,lstm,gru,stacked,bidirectional]
     [--dtypes float32,float64] [--batch 20 --steps 35 --size 200 --repeat 15] [--frameworks tensorflow,torch]

For each model (one layer of each cell; ``stacked``: 2 LSTM layers; ``bidirectional``: one bidirectional
LSTM layer, directions concatenated; all returning sequences, a Dense head of 10 at every step, softmax
cross-entropy; non-zero initial states) and dtype, four contenders compute the same work, one forward and
backward: outputs, loss, and the gradients of every parameter, the inputs and the initial states.

* ``keras adapter``/``torch adapter``: ``adapter.run(model, spec, batch, dtype)`` as ``compare`` runs it,
  NumPy in and NumPy out (every output it returns: each recurrent layer's outputs, final states, loss,
  accuracy, gradients in the canonical layout);
* ``keras own``: what a Keras user writes: the same layers called in a ``tf.function`` under a
  ``GradientTape``, tensors made once beforehand, results left as tensors;
* ``torch own``: nn.LSTM/nn.GRU/nn.RNN and nn.Linear, forward and ``loss.backward()``, tensors made once.

Each framework runs in a process of its own, as its users run it (in one process, TensorFlow's and torch's
thread pools spin against each other: measured, torch's LSTM 10x slower right after a TensorFlow call on 2
cores). In it, after one warm-up each (tracing), the two contenders run in turn, ``repeat`` rounds (who goes
first alternates); times are medians over the rounds, and adapter/own is the median over the rounds of the two
times measured in the same round, so that a change of machine load between rounds cancels. Target (issue 12):
each adapter within 1.5x of its framework's own best; PASS/FAIL per row. Also printed: Keras over torch, own
scripts and adapters (a ratio of medians measured in two processes, one after the other: noisier).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Any, Callable

from bench_recurrent import _rounds  # the same interleaved, rotated timing rounds (this directory is on sys.path)

TARGET = 1.5  # adapter time <= TARGET x the framework's own best
MODELS = ("simple_rnn", "lstm", "gru", "stacked", "bidirectional")
CLASSES = 10


def _args() -> argparse.Namespace:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--dtypes", default="float32,float64")
    ap.add_argument("--frameworks", default="tensorflow,torch")
    ap.add_argument("--batch", type=int, default=20)
    ap.add_argument("--steps", type=int, default=35)
    ap.add_argument("--size", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--child", help=argparse.SUPPRESS)  # FRAMEWORK: measure its contenders, print JSON (internal)
    return ap.parse_args()


def _spec(name: str, size: int) -> Any:
    from reference.spec import SequenceSpec
    cell = name if name in ("simple_rnn", "lstm", "gru") else "lstm"
    return SequenceSpec("bench", input_size=size, hidden_size=size, output_size=CLASSES, cell=cell,
                        loss="softmax_ce", accuracy="argmax", num_layers=2 if name == "stacked" else 1,
                        bidirectional=name == "bidirectional", reset_after=True)


def _keras_own(seq: Any, batch: Any, dtype: str) -> Callable[[], Any]:
    """A Keras user's forward+backward: the layers in a tf.function under a GradientTape."""
    import tensorflow as tf
    import keras
    cls = {"simple_rnn": keras.layers.SimpleRNN, "lstm": keras.layers.LSTM, "gru": keras.layers.GRU}[seq.cell]
    n_states = 2 if seq.cell == "lstm" else 1
    dirs = 2 if seq.bidirectional else 1
    rnns = []
    for _ in range(seq.num_layers):
        layer = cls(seq.hidden_size, return_sequences=True, dtype=dtype)
        rnns.append(keras.layers.Bidirectional(layer, dtype=dtype) if seq.bidirectional else layer)
    head = keras.layers.Dense(CLASSES, dtype=dtype)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True, dtype=dtype)
    b, h = batch.inputs.shape[0], seq.hidden_size
    x = tf.constant(batch.inputs, dtype)
    states = [[tf.constant(0.1 * (k + 1), dtype, (b, h)) for k in range(n_states * dirs)] for _ in rnns]
    y = tf.constant(batch.targets, "int64")

    def forward(x: Any, states: list) -> Any:
        seq_out = x
        for layer, s in zip(rnns, states):
            seq_out = layer(seq_out, initial_state=s)
        return head(seq_out)

    forward(x, states)  # builds the layers (their variables), outside the traced function
    variables = [v for l in rnns + [head] for v in l.trainable_weights]

    @tf.function
    def step(x: Any, states: list, y: Any) -> tuple:
        flat = [s for group in states for s in group]
        with tf.GradientTape() as tape:
            tape.watch([x] + flat)
            logits = forward(x, states)
            loss = loss_fn(y, logits)
        return logits, loss, tape.gradient(loss, variables + [x] + flat)

    return lambda: step(x, states, y)


def _torch_own(seq: Any, batch: Any, dtype: str) -> Callable[[], Any]:
    """A torch user's forward+backward: the native recurrent module and nn.Linear, ``loss.backward()``."""
    import torch
    dt = getattr(torch, dtype)
    cls = {"simple_rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[seq.cell]
    dirs = 2 if seq.bidirectional else 1
    rnn = cls(seq.input_size, seq.hidden_size, num_layers=seq.num_layers, bidirectional=seq.bidirectional,
              batch_first=True).to(dt)
    head = torch.nn.Linear(dirs * seq.hidden_size, CLASSES).to(dt)
    params = list(rnn.parameters()) + list(head.parameters())
    b, h = batch.inputs.shape[0], seq.hidden_size
    x = torch.tensor(batch.inputs, dtype=dt, requires_grad=True)
    h0 = torch.full((seq.num_layers * dirs, b, h), 0.1, dtype=dt, requires_grad=True)
    c0 = torch.full((seq.num_layers * dirs, b, h), 0.2, dtype=dt, requires_grad=True)
    y = torch.tensor(batch.targets, dtype=torch.int64)
    leaves = params + [x, h0, c0]

    def step() -> Any:
        for t in leaves:
            t.grad = None
        out, _ = rnn(x, (h0, c0) if seq.cell == "lstm" else h0)
        logits = head(out)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, CLASSES), y.reshape(-1))
        loss.backward()
        return loss

    return step


def _contenders(framework: str, name: str, dtype: str, a: argparse.Namespace) -> dict[str, Callable[[], Any]]:
    """"adapter" (``adapter.run``, NumPy in and out) and "own" (the minimal script) for one framework."""
    import numpy as np

    from adapters import registry
    from reference import stack
    from reference.params import draw_batch, init_params
    seq = _spec(name, a.size)
    rng = np.random.default_rng(0)
    params = init_params(seq, rng)
    batch = draw_batch(seq, rng, a.batch, a.steps)
    layered = stack.from_sequence(seq)
    adapter = registry.get(framework, layered)
    built = adapter.build(layered, params, dtype)
    own = _keras_own if framework == "tensorflow" else _torch_own
    return {"adapter": lambda: adapter.run(built, layered, batch, dtype), "own": own(seq, batch, dtype)}


def _child(a: argparse.Namespace) -> None:
    """One framework's measurements, a JSON line per model and dtype, then one with its versions."""
    if a.child == "tensorflow":
        from adapters.tf_import import import_tf
        tf, keras = import_tf()
        about = f"tensorflow {tf.__version__} (keras {keras.__version__})"
    else:
        import torch
        about = f"torch {torch.__version__} ({torch.get_num_threads()} threads)"
    for name in a.models.split(","):
        for dtype in a.dtypes.split(","):
            print(json.dumps({"model": name, "dtype": dtype,
                              "times": _rounds(_contenders(a.child, name, dtype, a), a.repeat)}), flush=True)
    print(json.dumps({"about": about}), flush=True)


def _measure(framework: str, a: argparse.Namespace) -> tuple[dict[tuple[str, str], dict], str]:
    cmd = [sys.executable, os.path.abspath(__file__), "--child", framework, "--models", a.models, "--dtypes",
           a.dtypes, "--batch", str(a.batch), "--steps", str(a.steps), "--size", str(a.size), "--repeat", str(a.repeat)]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])),
           "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=root)
    if proc.returncode:
        raise SystemExit(f"{framework}: the measuring process failed:\n{proc.stderr[-3000:]}")
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    return {(r["model"], r["dtype"]): r["times"] for r in rows if "times" in r}, rows[-1]["about"]


def main() -> None:
    a = _args()
    if a.child:
        _child(a)
        return
    import numpy as np
    frameworks = a.frameworks.split(",")
    short = {"tensorflow": "keras", "torch": "torch"}
    measured, about = {}, []
    for f in frameworks:  # one after the other: each has the machine's cores to itself
        measured[f], text = _measure(f, a)
        about.append(text)
    print(f"forward+backward, B={a.batch} T={a.steps} D=H={a.size}; medians of {a.repeat} rounds after a warm-up; "
          f"{', '.join(about)}; each framework in its own process; load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} cores")
    head = f"{'model':<14}{'dtype':<8}"
    for f in frameworks:
        head += f"{short[f] + ' adapter':>15}{short[f] + ' own':>11}{'adapter/own':>13}{'':>6}"
    both = len(frameworks) == 2
    if both:
        head += f"{'keras/torch own':>17}{'keras/torch adapter':>21}"
    print(head + f"   (ms; target: adapter <= {TARGET}x own)")
    verdicts = []
    for name in a.models.split(","):
        for dtype in a.dtypes.split(","):
            row = f"{name:<14}{dtype:<8}"
            med = {}
            for f in frameworks:
                times = measured[f][name, dtype]
                med[f] = {k: 1e3 * float(np.median(v)) for k, v in times.items()}
                r = float(np.median(np.array(times["adapter"]) / np.array(times["own"])))
                verdicts.append(r <= TARGET)
                row += f"{med[f]['adapter']:15.1f}{med[f]['own']:11.1f}{r:12.2f}x{'PASS' if r <= TARGET else 'FAIL':>6}"
            if both:
                k, t = med["tensorflow"], med["torch"]
                row += f"{k['own'] / t['own']:16.2f}x{k['adapter'] / t['adapter']:20.2f}x"
            print(row, flush=True)
    print(f"targets met: {sum(verdicts)} of {len(verdicts)}")


if __name__ == "__main__":
    main()
