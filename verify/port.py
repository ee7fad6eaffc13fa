"""``port``: convert weights to another framework, verify the result with ``compare``, write it only if equivalent."""
from __future__ import annotations

import os
import tempfile
from collections import OrderedDict
from dataclasses import replace
from typing import Callable

import numpy as np

from verify import files
from verify.report import Report

TARGET_SUFFIX = {"torch": files.TORCH, "keras": (".keras",)}


def _write_torch(path: str, tensors: "OrderedDict[str, np.ndarray]") -> None:
    if path.lower().endswith(".safetensors"):
        from adapters import readers
        readers.write_safetensors(path, tensors)
        return
    import torch
    torch.save(OrderedDict((k, torch.from_numpy(np.ascontiguousarray(v))) for k, v in tensors.items()), path)


def _temporary(output: str) -> str:
    """A fresh file beside ``output`` with its suffix, so that the final move is a rename."""
    directory = os.path.dirname(os.path.abspath(output))
    suffix = os.path.splitext(output)[1]
    fd, tmp = tempfile.mkstemp(prefix=".port-", suffix=suffix, dir=directory)
    os.close(fd)
    return tmp


def _check_paths(source: str, to: str, output: str, like: str | None) -> None:
    inputs = files.inputs_of(source) + ([like] if like else [])
    if any(os.path.abspath(output) == os.path.abspath(p) for p in inputs):
        raise ValueError(f"{output}: is an input of this port; port never overwrites an input, write to another file")
    if not output.lower().endswith(TARGET_SUFFIX[to]):
        raise ValueError(f"{output}: a {to} file must end in {' or '.join(TARGET_SUFFIX[to])}")
    if not os.path.isdir(os.path.dirname(os.path.abspath(output))):
        raise ValueError(f"{output}: its directory does not exist")


def port(source: str, to: str, output: str, like: str | None = None, forget_bias: float = 1.0,
         activation: str = "tanh", dtype: str = "float32", seed: int = 0,
         progress: Callable[[str], None] = lambda s: None) -> Report:
    """Convert ``source`` to ``to`` (torch or keras), verify, and move the result to ``output`` only when
    the verdict is equivalent; the report says why otherwise (and nothing is written)."""
    from adapters import keras_stack, torch_stack
    from verify import api, user
    _check_paths(source, to, output, like)
    kind = files.kind_of(source)
    tmp = _temporary(output)
    try:
        if kind == "keras" and to == "torch":
            spec, side = user.load_keras(source, "float32")
            _write_torch(tmp, torch_stack.state_dict(torch_stack.build(spec, side.params, "float32", split_bias=False)))
            report = api.compare_files(keras=source, torch=tmp, dtype=dtype, seed=seed, progress=progress)
        elif kind == "tf1" and to == "torch":
            spec, side = user.load_tf1(source, forget_bias, activation)
            _write_torch(tmp, torch_stack.state_dict(torch_stack.build(spec, side.params, "float32", split_bias=False)))
            report = api.compare_files(tf1_checkpoint=source, torch=tmp, forget_bias=forget_bias,
                                       activation=activation, dtype=dtype, seed=seed, progress=progress)
        elif kind == "torch" and to == "keras":
            if not like:
                raise ValueError(f"{source}: torch weights carry no architecture; give --like MODEL.keras")
            spec, _ = user.load_keras(like, "float32")
            side = user.load_torch(spec, source, "float32")
            keras_stack.build(spec, side.params, "float32").save(tmp)
            report = api.compare_files(keras=tmp, torch=source, dtype=dtype, seed=seed, progress=progress)
        else:
            raise ValueError(f"{source}: port from a {kind} file to {to} is not supported; supported: Keras -> torch, "
                             "torch (with --like MODEL.keras) -> keras, TF1 checkpoint -> torch")
        report = replace(report, model=os.path.basename(output))
        if report.verdict == "equivalent":
            os.replace(tmp, output)
            progress(f"wrote {output}")
        return report
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
