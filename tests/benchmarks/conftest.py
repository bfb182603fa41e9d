"""Shared by the benchmark scripts' smoke tests: loading a script from benchmarks/ as a module, and putting
torch's process-wide thread count back after a script has set it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import ModuleType

import pytest
import torch

from helpers import load_benchmark


@pytest.fixture
def load_script() -> Callable[[str], ModuleType]:
    """benchmarks/<name>.py imported as the module <name>."""
    return load_benchmark


@pytest.fixture
def restore_threads() -> Iterator[None]:
    """The scripts call torch.set_num_threads, which is process-wide; put it back for later tests."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)
