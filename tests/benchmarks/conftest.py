"""Shared by the benchmark scripts' smoke tests: loading a script from benchmarks/ as a module, and putting
torch's process-wide thread count back after a script has set it."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def load_script() -> Callable[[str], ModuleType]:
    """benchmarks/<name>.py imported as the module <name>."""
    return _load


@pytest.fixture
def restore_threads() -> Iterator[None]:
    """The scripts call torch.set_num_threads, which is process-wide; put it back for later tests."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)
