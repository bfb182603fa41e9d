"""Smoke test of benchmarks/cpu_inference.py: one tiny run (depth 1, batch 2, one repeat) gives positive
throughputs for both tasks and both libraries, passes the parity check and writes the same results as JSON."""

from __future__ import annotations

import importlib.util
import io
import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import torch
from rich.console import Console

pytest.importorskip("transformers")

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "cpu_inference.py"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("cpu_inference", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def restore_threads() -> Iterator[None]:
    """The script calls torch.set_num_threads, which is process-wide; put it back for later tests."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.mark.slow
@pytest.mark.usefixtures("restore_threads")
def test_tiny_run_reports_both_tasks_and_libraries(tmp_path: Path) -> None:
    bench = load_script()
    out = tmp_path / "results.json"
    console = Console(file=io.StringIO(), width=200)
    argv = ["--depth", "1", "--batch", "2", "--iters", "1", "--warmup", "0", "--threads", "1", "--json", str(out)]
    results = bench.main(argv, console=console)

    assert results["parity"]["passed"]
    assert all(diff < 1e-4 for diff in results["parity"]["max_abs_diff"].values())
    rows = {row["task"]: row for row in results["rows"]}
    assert set(rows) == {"image", "text"}
    for row in rows.values():
        assert row["batch"] == 2
        assert row["transformers_items_per_s"] > 0
        assert row["omnibind_items_per_s"] > 0
        assert len(row["transformers_seconds_each"]) == len(row["omnibind_seconds_each"]) == 1
        assert row["speedup"] > 0
    assert json.loads(out.read_text()) == results
    printed = console.file.getvalue()
    assert "speed-up" in printed and "parity" in printed and "1 threads" in printed
