"""Which adapters exist; each is imported only when asked for, since a framework costs seconds to import."""
from __future__ import annotations

import importlib
from types import ModuleType

# framework name -> module implementing build / extract / run / versions
ADAPTERS: dict[str, str] = {
    "tensorflow": "adapters.keras3",
    "torch": "adapters.torch_nn",
}


def names() -> tuple[str, ...]:
    return tuple(ADAPTERS)


def get(name: str) -> ModuleType:
    """The adapter module for ``name``; raises KeyError listing the known ones."""
    if name not in ADAPTERS:
        raise KeyError(f"unknown framework {name!r}; expected one of: {', '.join(ADAPTERS)}")
    return importlib.import_module(ADAPTERS[name])
