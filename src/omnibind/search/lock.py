"""One writer at a time per index folder: an advisory file lock that the OS releases when the process dies,
so a killed `omnibind index` never leaves the index locked."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from omnibind.errors import InputError

LOCK_FILE = ".lock"


@contextmanager
def writer_lock(folder: Path, wait: bool = False) -> Iterator[bool]:
    """Hold the folder's writer lock; yields True when held. Without `wait`, a lock held elsewhere yields
    False, and with `wait` it blocks until released."""
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextmanager
def exclusive_writer(folder: Path) -> Iterator[None]:
    """The writer lock, or an InputError saying another process is updating the index."""
    with writer_lock(folder) as held:
        if not held:
            raise InputError(folder, "another process is updating this index", "that run to finish first")
        yield
