"""Times `python -m verify compare --keras X --torch Y` cold (a new process) on a user-sized model.

Default: a 2-layer LSTM of 256 units over 100 steps (issue 8's acceptance figure: under 30 s on 2 cores).
The files are made here: a Keras Sequential with drawn weights, and its torch state_dict written from
torch's documented layout (kernel transposed; Keras's bias in bias_ih, zeros in bias_hh).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np


def make_files(directory: str, units: int, steps: int, features: int, seed: int) -> tuple[str, str]:
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
    from adapters.tf_import import import_tf
    import torch
    _, keras = import_tf()
    rng = np.random.default_rng(seed)
    model = keras.Sequential([keras.Input((steps, features)), keras.layers.LSTM(units, return_sequences=True),
                              keras.layers.LSTM(units, return_sequences=True), keras.layers.Dense(4)])
    model.set_weights([rng.uniform(-0.08, 0.08, w.shape).astype("float32") for w in model.get_weights()])
    keras_path = os.path.join(directory, "model.keras")
    model.save(keras_path)
    state = {}
    lstm1, lstm2, dense = model.layers
    for k, layer in enumerate((lstm1, lstm2)):
        kernel, recurrent, bias = layer.get_weights()
        state[f"rnn.weight_ih_l{k}"] = torch.from_numpy(kernel.T.copy())
        state[f"rnn.weight_hh_l{k}"] = torch.from_numpy(recurrent.T.copy())
        state[f"rnn.bias_ih_l{k}"] = torch.from_numpy(bias)
        state[f"rnn.bias_hh_l{k}"] = torch.zeros(4 * units)
    kernel, bias = dense.get_weights()
    state["head.weight"], state["head.bias"] = torch.from_numpy(kernel.T.copy()), torch.from_numpy(bias)
    torch_path = os.path.join(directory, "port.pt")
    torch.save(state, torch_path)
    return keras_path, torch_path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--units", type=int, default=256)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--features", type=int, default=32)
    p.add_argument("--dtype", default="float32")
    p.add_argument("--repeat", type=int, default=1)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as d:
        keras_path, torch_path = make_files(d, args.units, args.steps, args.features, 0)
        cmd = [sys.executable, "-m", "verify", "compare", "--keras", keras_path, "--torch", torch_path,
               "--dtype", args.dtype, "--quiet", "--json", os.path.join(d, "r.json")]
        for i in range(args.repeat):
            t = time.perf_counter()
            out = subprocess.run(cmd, capture_output=True, text=True, cwd=os.path.join(os.path.dirname(__file__), ".."))
            wall = time.perf_counter() - t
            timing = next((l for l in out.stdout.splitlines() if l.startswith("time:")), "")
            print(f"2-layer LSTM {args.units} units, {args.steps} steps, {args.dtype}: exit {out.returncode}, "
                  f"cold wall {wall:.1f} s ({timing})")
            if out.returncode not in (0, 1):
                print(out.stderr[-2000:])


if __name__ == "__main__":
    main()
