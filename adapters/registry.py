"""Which adapters exist, per framework and model family; each is imported only when asked for,
since a framework costs seconds to import.

An adapter module provides ``build(spec, params, dtype)``, ``extract(model)``,
``run(model, spec, batch, dtype)`` and ``versions()``. torch's also take ``build(..., device=...)`` (the model's
device; ``run`` and ``train`` place their tensors on it and return NumPy arrays) and give ``kernels(spec)``, the
kernel families whose precision verify/device.py reads for ``compare --device cuda``.
"""
from __future__ import annotations

import importlib
from types import ModuleType

FRAMEWORKS = ("tensorflow", "torch", "tf1")

# (framework, spec family module) -> adapter module. A SequenceSpec (family reference.model) is a compact way to
# write a layer stack: convert it with reference.stack.from_sequence.
ADAPTERS: dict[tuple[str, str], str] = {
    ("tensorflow", "reference.seq2seq"): "adapters.keras_seq2seq",
    ("torch", "reference.seq2seq"): "adapters.torch_seq2seq",
    ("tensorflow", "reference.stack"): "adapters.keras_stack",
    ("torch", "reference.stack"): "adapters.torch_stack",
    ("tf1", "reference.stack"): "adapters.tf1_stack",
}


def names() -> tuple[str, ...]:
    return FRAMEWORKS


def get(framework: str, spec: object) -> ModuleType:
    """The adapter for ``framework`` and the family of ``spec``; KeyError naming what exists."""
    if framework not in FRAMEWORKS:
        raise KeyError(f"unknown framework {framework!r}; expected one of: {', '.join(FRAMEWORKS)}")
    family = getattr(spec, "family")
    key = (framework, family)
    if key not in ADAPTERS:
        have = sorted(fw for fw, fam in ADAPTERS if fam == family)
        raise KeyError(f"framework {framework!r} has no adapter for model {getattr(spec, 'name', spec)!r}; "
                       f"it has: {', '.join(have)}")
    return importlib.import_module(ADAPTERS[key])


def versions_of(framework: str) -> dict[str, str]:
    """The versions one framework's adapters report (the same for every family)."""
    module = {"tensorflow": "adapters.keras3", "torch": "adapters.torch_nn", "tf1": "adapters.tf1_cells"}[framework]
    return importlib.import_module(module).versions()
