"""Media files: which modality a file holds (by extension) and the checks every decoder runs first."""

from __future__ import annotations

import os
from pathlib import Path

from omnibind.errors import InputError

# Extensions without the dot, in order of preference when one WebDataset sample holds several.
IMAGE_EXTS = ("jpg", "jpeg", "png", "webp", "gif", "bmp", "tiff", "tif")
AUDIO_EXTS = ("flac", "wav", "ogg", "oga", "opus", "mp3")
IMAGE_EXTENSIONS = frozenset(f".{ext}" for ext in IMAGE_EXTS)
AUDIO_EXTENSIONS = frozenset(f".{ext}" for ext in AUDIO_EXTS)
BYTES_NAME = "<bytes>"


def modality_of(path: str | os.PathLike) -> str | None:
    """"image" or "audio" from a file's extension, None for anything else."""
    suffix = Path(path).suffix.lower()
    if suffix in IMAGE_EXTENSIONS:
        return "image"
    if suffix in AUDIO_EXTENSIONS:
        return "audio"
    return None


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
