"""Plugins: modules named in an environment variable and a package entry-point group, imported once per
process on first use, so that processes omnibind starts itself (torchrun workers, the search service) see
the modalities and objectives a user registered."""

from __future__ import annotations

import importlib
import os
from importlib.metadata import entry_points

from omnibind.errors import InputError

_loaded: set[str] = set()


def load_plugins(env_var: str, group: str, what: str) -> None:
    """Import the comma-separated modules of `env_var` and load the `group` entry points (once per env_var);
    `what` names the plugins in the error for a module that cannot be imported ("modality")."""
    if env_var in _loaded:
        return
    _loaded.add(env_var)
    for module in filter(None, (m.strip() for m in os.environ.get(env_var, "").split(","))):
        try:
            importlib.import_module(module)
        except ImportError as err:
            raise InputError(env_var, f"cannot import {what} module {module!r} ({err})",
                             "importable module names, comma-separated") from err
    for point in entry_points(group=group):
        point.load()
