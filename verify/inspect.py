"""``inspect``: what a model file holds, its layers and options, and where each of its tensors goes in the
canonical layout (shape, transpose, gate permutation), read by the same loaders and tables as ``compare``."""
from __future__ import annotations

import dataclasses
import json

import numpy as np

from reference.layers import BUG_DEFAULTS as _BUG_OPTIONS  # only the diagnosis sets them: shown when it does
from verify import files

TRANSFORMS = {"identity": "as is", "transpose": "transposed",
              "transpose_rzn": "transposed, gate blocks r,z,n -> z,r,h", "rzn": "gate blocks r,z,n -> z,r,h"}


def _relevant(layer: object, option: str) -> bool:
    """Options that mean something for this layer (a GRU's reset_after, not an LSTM's)."""
    cell, bidirectional = getattr(layer, "cell", None), getattr(layer, "bidirectional", False)
    if option in _BUG_OPTIONS:
        return getattr(layer, option) != _BUG_OPTIONS[option]
    return not ((option == "reset_after" and cell != "gru")
                or (option in ("forget_bias", "use_peepholes", "proj_size") and cell != "lstm")
                or (option == "recurrent_activation" and cell == "simple_rnn")
                or (option in ("merge_mode", "last_output") and not bidirectional))


def _layers(spec: object) -> list[dict]:
    out = []
    for layer in spec.layers:
        options = {k: v for k, v in dataclasses.asdict(layer).items() if k != "name" and _relevant(layer, k)}
        out.append({"name": layer.name, "kind": type(layer).__name__, "options": options})
    return out


def _torch_moves(spec: object, groups: list) -> dict[str, str]:
    """Canonical name -> how torch stores it (tensor names and transform)."""
    from adapters import torch_stack
    out = {}
    for g in groups:
        for table, pre, fmt in torch_stack._tables(spec, g):
            for entry in table:
                names = [f"{g.module}.{n.format(**fmt)}" for n in entry.framework]
                held = " + ".join(names) + (" (summed)" if len(names) > 1 else "")
                out[f"{pre}/{entry.canonical}"] = f"{held}, {TRANSFORMS[entry.transform]}"
    return out


def _tensors(spec: object, params: dict, own: dict[str, str], torch_moves: dict[str, str]) -> list[dict]:
    from reference import stack
    rows = []
    for name, value in params.items():
        gates = stack.gate_blocks(spec, name)
        row = {"canonical": name, "shape": list(np.shape(value)), "from": own.get(name, name)}
        if gates:
            row["gates"] = ",".join(gates)
        if torch_moves:
            row["torch"] = torch_moves.get(name, "")
        rows.append(row)
    return rows


def inspect_file(path: str, forget_bias: float = 1.0, activation: str = "tanh") -> dict:
    """A plain dict: file, format, layers (kind and options), and every tensor's place in the canonical layout."""
    from adapters import readers, torch_stack
    from verify import user
    kind = files.kind_of(path)
    if kind == "keras":
        spec, side = user.load_keras(path, "float32")
        moves = _torch_moves(spec, torch_stack.default_groups(spec))
        return {"file": path, "format": "keras", "layers": _layers(spec),
                "tensors": _tensors(spec, side.params, side.tensor_name, moves),
                "note": "torch: where a torch port (one module per layer, named after it) holds each tensor"}
    if kind == "tf1":
        from adapters import tf1_checkpoint
        described = tf1_checkpoint.describe(tf1_checkpoint.read_checkpoint(path), forget_bias=forget_bias,
                                            activation=activation)[0]  # as TF1 runs it: forget_bias not folded
        spec, side = user.load_tf1(path, forget_bias, activation)
        moves = _torch_moves(spec, torch_stack.default_groups(spec))
        return {"file": path, "format": "tf1 checkpoint", "layers": _layers(described),
                "tensors": _tensors(spec, side.params, side.tensor_name, moves), "note": " ".join(side.notes)}
    tensors = readers.read_torch_weights(path)
    modules = []
    for owner, ts in torch_stack.by_owner(tensors).items():
        shapes = {n: list(np.shape(v)) for n, v in ts.items()}
        if any(n.startswith(torch_stack.RECURRENT_KEYS) for n in ts):
            depth = len({n.split("_l")[1].split("_")[0] for n in ts})
            rows, width = np.shape(ts.get("weight_hh_l0", np.zeros((0, 0))))
            gates = rows // np.shape(ts["weight_hr_l0"])[1] if "weight_hr_l0" in ts else \
                (rows // width if width else 0)
            what = {4: "nn.LSTM", 3: "nn.GRU", 1: "nn.RNN"}.get(gates, "recurrent module")
            bidir = any(n.endswith("_reverse") for n in ts)
            what += f" num_layers={depth}" + (" bidirectional" if bidir else "")
        else:
            what = "nn.Linear" if "bias" in ts else "nn.Embedding or nn.Linear(bias=False)"
        modules.append({"module": owner, "kind": what, "tensors": shapes})
    return {"file": path, "format": "torch weights", "modules": modules,
            "note": "a torch file carries no architecture: compare or port it with --keras / --like MODEL.keras"}


def render(info: dict, as_json: bool = False) -> str:
    if as_json:
        return json.dumps(info, indent=2)
    lines = [f"{info['file']}: {info['format']}"]
    for layer in info.get("layers", []):
        opts = ", ".join(f"{k}={v}" for k, v in layer["options"].items())
        lines.append(f"  layer {layer['name']}: {layer['kind']}({opts})")
    for m in info.get("modules", []):
        lines.append(f"  module {m['module'] or '(top level)'}: {m['kind']}")
        lines += [f"    {n} {tuple(s)}" for n, s in m["tensors"].items()]
    if info.get("tensors"):
        lines.append("  tensors (canonical name, shape, gates: where it comes from | where torch holds it):")
        for t in info["tensors"]:
            gates = f" gates {t['gates']}" if "gates" in t else ""
            torch_part = f" | {t['torch']}" if t.get("torch") else ""
            lines.append(f"    {t['canonical']} {tuple(t['shape'])}{gates}: {t['from']}{torch_part}")
    if info.get("note"):
        lines.append(f"  note: {info['note']}")
    return "\n".join(lines)
