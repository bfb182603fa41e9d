"""Smoke test of benchmarks/packed_layouts.py: a tiny run (two row counts, one repeat) gives a row per SigLIP-base
linear shape and row count with the eager call and both packed layouts timed, names the faster layout, and writes
the same results as JSON."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
from rich.console import Console

from omnibind.runtime import matmul_features, torch_paths


@pytest.mark.skipif(not torch_paths.packed_linears_supported(), reason="no oneDNN bf16 on this CPU")
@pytest.mark.usefixtures("restore_threads")
def test_tiny_run_times_both_layouts_per_shape_and_row_count(tmp_path: Path,
                                                             load_script: Callable[[str], ModuleType]) -> None:
    bench = load_script("packed_layouts")
    out = tmp_path / "results.json"
    results = bench.main(["--rows", "4,32", "--iters", "1", "--threads", "1", "--json", str(out)],
                         console=Console(file=io.StringIO(), width=200))
    rows = results["rows"]
    assert [(r["in"], r["out"], r["rows"]) for r in rows] == [(i, o, n) for i, o in bench.SHAPES for n in (4, 32)]
    names = {"eager F.linear", f"packed for {torch_paths.SMALL_PACK_ROWS}", f"packed for {torch_paths.PACK_ROWS}"}
    for r in rows:
        assert set(r["ms"]) == names and all(ms > 0 for ms in r["ms"].values())
        assert r["faster_layout_rows"] in (torch_paths.SMALL_PACK_ROWS, torch_paths.PACK_ROWS)
    assert json.loads(out.read_text())["rows"] == rows
    assert results["machine"]["cpu_matmul_features"] == matmul_features()  # the CPU's AMX / VNNI / BF16 flags


def test_row_counts_must_be_whole_numbers(load_script: Callable[[str], ModuleType]) -> None:
    bench = load_script("packed_layouts")
    with pytest.raises(SystemExit):
        bench.parse_args(["--rows", "8,many"])
