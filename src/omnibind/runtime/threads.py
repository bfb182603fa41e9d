"""Thread settings that fit the machine: one intra-op thread per usable core for batch embedding (the
default torch picks can exceed a container's affinity mask, and oversubscribed threads spin against each other)."""

from __future__ import annotations

import torch

from omnibind.errors import InputError
from omnibind.runtime.detect import usable_cores


def batch_threads(threads: int | None = None) -> int:
    """Set and return torch's intra-op threads for batch embedding: `threads`, or every usable core."""
    count = usable_cores() if threads is None else threads
    if count < 1:
        raise InputError("--threads", f"got {count}", "a positive number of threads")
    torch.set_num_threads(count)
    return count
