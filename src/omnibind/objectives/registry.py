"""The registry of training objectives, read by the trainer through the config's loss.kind. Built-in
objectives register on import; others register themselves (`@register_objective` on an Objective class),
or are named in OMNIBIND_OBJECTIVES (comma-separated modules, imported on first use, so that torchrun
workers see them too) or in the `omnibind.objectives` entry-point group."""

from __future__ import annotations

from omnibind import plugins
from omnibind.errors import InputError
from omnibind.objectives.base import Objective, ObjectiveSetup

ENV_VAR = "OMNIBIND_OBJECTIVES"
ENTRY_POINT_GROUP = "omnibind.objectives"

_registry: dict[str, type[Objective]] = {}


def register_objective(cls: type[Objective], replace: bool = False) -> type[Objective]:
    """Add an Objective class under its `name` (usable as a class decorator); a different class of a name
    already taken is refused unless `replace`."""
    name = getattr(cls, "name", None)
    if not (isinstance(cls, type) and issubclass(cls, Objective)):
        raise InputError(getattr(cls, "__name__", repr(cls)), "not an Objective subclass",
                         "a class deriving from omnibind.objectives.Objective")
    if not isinstance(name, str) or not name.isidentifier():
        raise InputError(cls.__name__, f"objective name {name!r}", "an identifier such as 'sigmoid'")
    known = _registry.get(name)
    if known is not None and not replace and _identity(known) != _identity(cls):
        raise InputError(name, f"an objective of this name is already registered ({known.__qualname__})",
                         "a new name, or replace=True")
    _registry[name] = cls
    return cls


def _identity(cls: type) -> tuple[str, str]:
    """Module and qualified name: the same class imported twice (a re-run test module) is no conflict."""
    return cls.__module__, cls.__qualname__


def unregister_objective(name: str) -> None:
    """Remove an objective (tests that register toy objectives clean up with this)."""
    _registry.pop(name, None)


def load_plugins() -> None:
    """Import the modules named in OMNIBIND_OBJECTIVES and the entry points, once per process."""
    plugins.load_plugins(ENV_VAR, ENTRY_POINT_GROUP, "objective")


def objective_names() -> tuple[str, ...]:
    """Every registered objective, in registration order (built-ins first)."""
    load_plugins()
    return tuple(_registry)


def get_objective(name: str, source: str = "loss.kind") -> type[Objective]:
    """The objective class of this name, with an error (naming `source`) that lists the registered ones."""
    load_plugins()
    cls = _registry.get(name)
    if cls is None:
        raise InputError(source, f"unknown objective {name!r}",
                         f"one of {', '.join(_registry)} (or register one with omnibind.objectives.register_objective)")
    return cls


def build_objective(name: str, setup: ObjectiveSetup) -> Objective:
    """An instance of the named objective for this setup."""
    return get_objective(name)(setup)
