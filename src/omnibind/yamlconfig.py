"""Dataclass configs from YAML files plus `key.sub=value` overrides, with errors that name the key."""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from omnibind.errors import InputError

T = TypeVar("T")


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, naming the file in every error."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "config file not found", "a YAML file")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise InputError(path, f"invalid YAML ({err})", "a YAML mapping") from err
    if not isinstance(data, dict):
        raise InputError(path, f"top level is {type(data).__name__}", "a YAML mapping")
    return data


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Set `a.b.c=value` entries (values parsed as YAML) in a nested mapping; returns the mapping."""
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise InputError(item, "override is not key=value", "e.g. optim.lr=3e-4")
        *parents, leaf = key.split(".")
        node = data
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise InputError(key, f"{part!r} is not a section", "an override of a nested key")
        try:
            node[leaf] = yaml.safe_load(raw)
        except yaml.YAMLError as err:
            raise InputError(key, f"value {raw!r} is not valid YAML ({err})",
                             "a YAML value; quote strings that start with * or &, e.g. '[\"*-speech\"]'") from err
    return data


def from_dict(cls: type[T], data: dict[str, Any] | None, where: str = "config") -> T:
    """Build dataclass `cls` from a mapping, recursing into dataclass fields; unknown keys are errors."""
    data = data or {}
    if not isinstance(data, dict):
        raise InputError(where, f"got {type(data).__name__}", "a mapping")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise InputError(where, f"unknown key(s) {unknown}", f"keys among {sorted(known)}")
    values = {}
    for name, value in data.items():
        sub = _dataclass_in(hints[name])
        if sub and value is not None:
            values[name] = from_dict(sub, value, f"{where}.{name}")
        else:
            values[name] = _coerce(hints[name], value, f"{where}.{name}")
    try:
        return cls(**values)
    except (TypeError, ValueError) as err:
        raise InputError(where, str(err)) from err


def _coerce(hint: Any, value: Any, where: str) -> Any:
    """Numbers written as YAML 1.1 strings ("3e-4") become the float or int their field declares."""
    scalars = {a for a in (typing.get_args(hint) or (hint,)) if a in (int, float)}
    if isinstance(value, str) and scalars:
        try:
            return float(value) if float in scalars else int(value)
        except ValueError as err:
            raise InputError(where, f"{value!r} is not a number", "a number") from err
    if isinstance(value, int) and not isinstance(value, bool) and scalars == {float}:
        return float(value)
    return value


def _dataclass_in(hint: Any) -> type | None:
    """The dataclass type inside a hint such as `Foo` or `Foo | None`, else None."""
    if dataclasses.is_dataclass(hint):
        return hint
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return next((a for a in typing.get_args(hint) if dataclasses.is_dataclass(a)), None)
    return None


def to_yaml(config: Any) -> str:
    """YAML text of a dataclass config (the resolved config written into each run folder)."""
    return yaml.safe_dump(dataclasses.asdict(config), sort_keys=False)
