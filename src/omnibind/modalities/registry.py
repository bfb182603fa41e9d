"""The registry of modalities: every layer asks it what a modality is, which file holds which modality,
and which config class a tower has. Built-in modalities register on import; others register themselves,
or are named in the OMNIBIND_MODALITIES environment variable (comma-separated modules, imported on first
use, so that torchrun workers and services see them too) or in the `omnibind.modalities` entry-point group."""

from __future__ import annotations

import os
from pathlib import Path

from omnibind import plugins
from omnibind.errors import InputError
from omnibind.modalities.base import Modality, TowerConfig

ENV_VAR = "OMNIBIND_MODALITIES"
ENTRY_POINT_GROUP = "omnibind.modalities"

_registry: dict[str, Modality] = {}


def register(modality: Modality, replace: bool = False) -> Modality:
    """Add a modality; a second registration of the same name is refused unless `replace`."""
    name = getattr(modality, "name", None)
    if not isinstance(name, str) or not name.isidentifier():
        raise InputError(type(modality).__name__, f"modality name {name!r}", "an identifier such as 'depth'")
    if name in _registry and not replace and type(_registry[name]) is not type(modality):
        raise InputError(name, "a modality of this name is already registered", "a new name, or replace=True")
    for ext in modality.extensions:
        owner = _owner_of_extension(ext)
        if owner is not None and owner.name != name:
            raise InputError(name, f"extension .{ext} already belongs to {owner.name!r}", "extensions of its own")
    _registry[name] = modality
    return modality


def unregister(name: str) -> None:
    """Remove a modality (tests that register toy modalities clean up with this)."""
    _registry.pop(name, None)


def load_plugins() -> None:
    """Import the modules named in OMNIBIND_MODALITIES and the entry points, once per process."""
    plugins.load_plugins(ENV_VAR, ENTRY_POINT_GROUP, "modality")


def names() -> tuple[str, ...]:
    """Every registered modality, in registration order (built-ins first)."""
    load_plugins()
    return tuple(_registry)


def all_modalities() -> tuple[Modality, ...]:
    """Every registered modality object."""
    load_plugins()
    return tuple(_registry.values())


def get(name: str) -> Modality:
    """The modality of this name, with an error naming the registered ones."""
    load_plugins()
    modality = _registry.get(name)
    if modality is None:
        raise InputError(name, "unknown modality",
                         f"one of {', '.join(_registry)} (or register it: see docs/architecture.md)")
    return modality


def media() -> tuple[Modality, ...]:
    """The modalities with files of their own (indexed, uploaded, previewed)."""
    return tuple(m for m in all_modalities() if m.is_media)


def media_names() -> tuple[str, ...]:
    """Names of the modalities with files of their own."""
    return tuple(m.name for m in media())


def _owner_of_extension(ext: str) -> Modality | None:
    ext = ext.lower().lstrip(".")
    return next((m for m in _registry.values() if ext in m.extensions), None)


def for_extension(ext: str) -> Modality | None:
    """The modality whose files carry this extension ("png" or ".png"), None for unknown ones."""
    load_plugins()
    return _owner_of_extension(ext)


def modality_of(path: str | os.PathLike[str]) -> str | None:
    """The modality of a file from its extension, None for files no modality reads."""
    suffix = Path(path).suffix
    found = for_extension(suffix) if suffix else None
    return found.name if found is not None else None


def for_field(field: str) -> Modality | None:
    """The modality a sample field ("jpg", "txt", "flac") holds, None for other fields (json, cls)."""
    load_plugins()
    return next((m for m in _registry.values() if field in m.field_names()), None)


def sniff(data: bytes) -> Modality | None:
    """The media modality whose header untyped bytes carry, None when no modality recognises them."""
    return next((m for m in media() if m.sniff(data)), None)


def for_config(config: TowerConfig) -> Modality:
    """The modality a tower config belongs to (by its class)."""
    load_plugins()
    for modality in _registry.values():
        if type(config) is modality.config_class:
            return modality
    raise InputError(type(config).__name__, "no registered modality has this config class",
                     "a config class of a registered modality")
