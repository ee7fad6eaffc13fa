"""What kind of model file a path names, by its suffix (or, for a TF1 checkpoint, by its ``.index`` file)."""
from __future__ import annotations

import os

KERAS = (".keras", ".h5")
TORCH = (".pt", ".pth", ".bin", ".safetensors")


def kind_of(path: str) -> str:
    """``keras``, ``torch`` or ``tf1``; ValueError naming the path and what was expected."""
    lower = path.lower()
    if lower.endswith(KERAS):
        return "keras"
    if lower.endswith(TORCH):
        return "torch"
    if os.path.isfile(path + ".index"):
        return "tf1"
    raise ValueError(f"{path}: not a model file this tool reads; expected a Keras file ({', '.join(KERAS)}), torch "
                     f"weights ({', '.join(TORCH)}) or a TF1 checkpoint prefix (PREFIX.index beside it)")


def inputs_of(path: str) -> list[str]:
    """The files a model path stands for (a TF1 prefix stands for its index and data files)."""
    if os.path.isfile(path + ".index"):
        directory = os.path.dirname(os.path.abspath(path))
        base = os.path.basename(path)
        return [os.path.join(directory, f) for f in os.listdir(directory) if f.startswith(base + ".")]
    return [path]
