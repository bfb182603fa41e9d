"""Durability helpers shared by every writer that must survive a crash (checkpoints, indexes, shards)."""

from __future__ import annotations

import os
from pathlib import Path


def fsync_path(path: str | os.PathLike) -> None:
    """Flush a file's or a folder's contents to disk (a folder: its entries, so a rename is durable)."""
    fd = os.open(Path(path), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
