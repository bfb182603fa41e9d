"""Foreign checkpoint kinds: each converter module in omnibind.convert declares the folders it reads
(by their config.json) and builds a ready model from them, so `omnibind.load` needs no list of formats."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

import omnibind.convert as package
from omnibind.errors import CheckpointError


@dataclass(frozen=True)
class CheckpointKind:
    """A foreign checkpoint format: `matches(config)` says whether a folder's config.json is one;
    `build(folder, config)` returns the model (weights loaded, preprocessors attached, in eval mode)."""

    name: str
    matches: Callable[[dict[str, Any]], bool]
    build: Callable[[Path, dict[str, Any]], nn.Module]


def kinds() -> list[CheckpointKind]:
    """Every kind declared as CHECKPOINT_KINDS by a module of omnibind.convert, in module-name order."""
    found: list[CheckpointKind] = []
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        if info.name == "registry":
            continue
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        found.extend(getattr(module, "CHECKPOINT_KINDS", ()))
    return found


def find(config: dict[str, Any], path: Path) -> CheckpointKind:
    """The one kind whose `matches` accepts this config.json, with an error listing the known kinds."""
    known = kinds()
    matching = [kind for kind in known if kind.matches(config)]
    if not matching:
        names = ", ".join(kind.name for kind in known)
        raise CheckpointError(
            f"{path}: unknown checkpoint kind (model_type {config.get('model_type')!r}; expected an omnibind "
            f"config or one of: {names})"
        )
    return matching[0]
