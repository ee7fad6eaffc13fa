"""The Python API for users' own tests: compare a Keras model with its torch port, or assert they are equivalent."""
from __future__ import annotations

import os
from typing import Any, Callable

import numpy as np

from verify.report import Report


def _load_array(path: str | None, what: str) -> np.ndarray | None:
    if path is None:
        return None
    if not os.path.isfile(path):
        raise ValueError(f"{path}: {what} file not found; expected a .npy array")
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise ValueError(f"{path}: not a readable .npy array for {what} ({str(e).splitlines()[0] if str(e) else e!r})") \
            from None
    if not isinstance(array, np.ndarray):  # an .npz archive
        raise ValueError(f"{path}: holds several arrays (.npz); expected one .npy array for {what}")
    if np.issubdtype(array.dtype, np.floating) and not np.all(np.isfinite(array)):
        raise ValueError(f"{path}: {what} hold NaN or infinite values")
    return array


def compare_files(keras: str | None = None, torch: str | None = None, torch_module: str | None = None,
                  tf1_checkpoint: str | None = None, forget_bias: float = 1.0, activation: str = "tanh",
                  inputs: str | np.ndarray | None = None, targets: str | np.ndarray | None = None,
                  dtype: str = "float32", seed: int = 0, progress: Callable[[str], None] = lambda s: None) -> Report:
    """``compare`` on users' files: the Keras file (or TF1 checkpoint) gives the architecture and the weights
    of record; the torch state_dict, safetensors or module is checked against them and the reference."""
    from verify import user
    x = _load_array(inputs, "--inputs") if isinstance(inputs, str) else inputs
    y = _load_array(targets, "--targets") if isinstance(targets, str) else targets
    spec, sides, batch, note = user.load_sides(keras, torch, torch_module, tf1_checkpoint, forget_bias, activation,
                                               dtype, x, y, seed, progress)
    return user.compare_sides(spec, sides, batch, dtype, seed, (note,), progress)


def compare_models(keras_model: Any, torch_model: Any, inputs: np.ndarray | None = None,
                   targets: np.ndarray | None = None, dtype: str = "float32", seed: int = 0) -> Report:
    """Compare a Keras model (object or file path) with a torch port (an ``nn.Module`` or a state_dict /
    safetensors path); returns the same ``Report`` as ``python -m verify compare``."""
    from verify import user
    if isinstance(keras_model, (str, os.PathLike)):
        spec, first = user.load_keras(os.fspath(keras_model), dtype)
    else:
        spec, first = user.keras_side(keras_model, getattr(keras_model, "name", "keras model"), dtype)
    if isinstance(torch_model, (str, os.PathLike)):
        second = user.load_torch(spec, os.fspath(torch_model), dtype)
    else:
        second = user.module_side(spec, torch_model, type(torch_model).__name__)
    spec, batch, note = user.user_batch(spec, inputs, targets, seed, user.steps_of(first))
    return user.compare_sides(spec, [first, second], batch, dtype, seed, (note,))


def assert_equivalent(keras_model: Any, torch_model: Any, inputs: np.ndarray | None = None,
                      targets: np.ndarray | None = None, dtype: str = "float32", seed: int = 0) -> Report:
    """``compare_models``, raising an AssertionError that carries the failing rows of the table."""
    from verify import render
    report = compare_models(keras_model, torch_model, inputs, targets, dtype, seed)
    if report.verdict != "equivalent":
        raise AssertionError(render.failures(report))
    return report
