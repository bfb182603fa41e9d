"""Which inference path built an index: vectors from one path are searched with queries from the same path, and
an index is extended only by the path that built it (its vectors then differ by the path's rounding alone)."""

from __future__ import annotations

from typing import Any

from omnibind.errors import InputError
from omnibind.runtime.spec import RuntimeSpec

META_KEY = "runtime"
LEGACY = RuntimeSpec("fp32")
"""What built an index that records no path: omnibind before runtimes existed embedded in float32."""


def recorded_spec(recorded: Any, has_items: bool) -> RuntimeSpec | None:
    """The path an index's meta value names; fp32 for an index of items that predates the record; None for an
    index that holds nothing yet (any path may build it)."""
    if recorded is not None:
        return RuntimeSpec.from_dict(recorded)
    return LEGACY if has_items else None


def check_same_runtime(where: str, recorded: Any, current: RuntimeSpec, has_items: bool) -> None:
    """Refuse to add vectors of another path to an index built with one (naming both and how to go on)."""
    built = recorded_spec(recorded, has_items)
    if built is not None and has_items and built.name != current.name:
        why = ""
        if built.path == current.path and built.weights != current.weights:  # an index from before per-channel int8
            why = (f" (int8 weights quantized {built.weights} there, {current.weights} here: the vectors would "
                   "differ by more than one path's rounding)")
        raise InputError(where, f"this index was built with --runtime {built.name} and this run uses "
                                f"{current.name}{why}",
                         f"--runtime {built.name} (the default for an existing index), or a new index for "
                         f"{current.name}")
