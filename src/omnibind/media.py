"""Media files: the checks every decoder runs first, and how errors name a source. Which modality a file
holds is the registry's to say (`omnibind.modalities.modality_of`)."""

from __future__ import annotations

import os
from pathlib import Path

from omnibind.errors import InputError

BYTES_NAME = "<bytes>"


def source_name(source: str | os.PathLike | bytes) -> str:
    """How error messages name a source: its path, or <bytes> for in-memory data."""
    return BYTES_NAME if isinstance(source, bytes | bytearray) else os.fspath(source)


def check_file(path: Path, expected: str) -> None:
    """Fail early, with a clear message, on a path that is missing, not a file, or empty."""
    if not path.exists():
        raise InputError(path, "file not found", expected)
    if not path.is_file():
        raise InputError(path, "not a regular file", expected)
    if path.stat().st_size == 0:
        raise InputError(path, "file is empty (0 bytes)", expected)
