"""Smoke test of benchmarks/data_throughput.py at a tiny size: positive rates for every format, a table
and the same numbers as JSON."""

from __future__ import annotations

import importlib.util
import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from omnibind.starter.packages import missing_debian

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "data_throughput.py"


@pytest.mark.skipif(bool({"tuxpaint-stamps-default", "fluid-soundfont-gm"} & set(missing_debian())),
                    reason="needs the data packages (make data-deps)")
@pytest.mark.filterwarnings("ignore:This DataLoader will create")
def test_benchmark_runs_at_a_tiny_size(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("data_throughput", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = io.StringIO()
    results = module.main(["--images", "4", "--clips", "2", "--workers", "0,1", "--batch", "2",
                           "--json", str(tmp_path / "r.json")], Console(file=out, width=120))
    assert len(results) == 8 and all(r["examples_per_s"] > 0 for r in results)
    assert {r["examples"] for r in results} == {4, 2}
    assert "examples per second" in out.getvalue() and "ogg 44.1k" in out.getvalue()
    assert json.loads((tmp_path / "r.json").read_text())["results"] == results
