"""Smoke tests of benchmarks/search_scale.py and benchmarks/search_load.py at tiny sizes: they run, print
their tables and report sane numbers (timings themselves are never asserted)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import faiss
import pytest
from rich.console import Console

from helpers import load_benchmark


@pytest.fixture
def restore_faiss_threads() -> Iterator[None]:
    threads = faiss.omp_get_max_threads()
    yield
    faiss.omp_set_num_threads(threads)


@pytest.mark.usefixtures("restore_faiss_threads")
@pytest.mark.parametrize("data", ["random", "clustered"])
def test_scale_benchmark_tiny_run(tmp_path: Path, data: str) -> None:
    bench = load_benchmark("search_scale")
    console = Console(file=io.StringIO(), width=200)
    out = tmp_path / "scale.json"
    results = bench.main(["--n", "4000", "--dim", "32", "--queries", "50", "--latency-queries", "10",
                          "--nprobe", "1,8", "--data", data, "--json", str(out)], console=console)
    rows = results["rows"]
    assert rows[0]["index"].startswith("exact") and rows[0]["recall_at_10"] == 1.0
    assert all(0 <= r["recall_at_10"] <= 1 and 0 < r["p50_ms"] <= r["p99_ms"] for r in rows)
    assert results["nlist"] == 63 and any(r["nprobe"] == results["tuned_nprobe"] for r in rows[1:])
    assert json.loads(out.read_text()) == results
    printed = console.file.getvalue()
    assert "recall@10" in printed and "p99 ms" in printed and "tuned nprobe" in printed


@pytest.mark.slow
def test_load_benchmark_tiny_run(tmp_path: Path) -> None:
    bench = load_benchmark("search_load")
    console = Console(file=io.StringIO(), width=200)
    results = bench.main(["--clients", "3", "--seconds", "2", "--model-size", "tiny", "--items", "12",
                          "--upload-share", "0.5", "--json", str(tmp_path / "load.json")], console=console)
    rows = {row["kind"]: row for row in results["rows"]}
    assert {"text", "image upload", "audio upload", "all"} <= set(rows)
    assert rows["all"]["requests"] > 0 and rows["all"]["errors"] == 0
    assert rows["all"]["p50_ms"] <= rows["all"]["p99_ms"]
    assert "p99 ms" in console.file.getvalue()


@pytest.mark.slow
def test_load_benchmark_compares_with_a_baseline(tmp_path: Path) -> None:
    bench = load_benchmark("search_load")
    console = Console(file=io.StringIO(), width=200)
    results = bench.main(["--clients", "2", "--seconds", "1", "--model-size", "tiny", "--items", "8",
                          "--uploads", "unique", "--text-queries", "unique", "--baseline", str(bench.OWN_SRC),
                          "--json", str(tmp_path / "load.json")], console=console)
    assert results["baseline"]["rows"] and results["comparison"]["errors"] == {"baseline": 0, "this change": 0}
    saved = json.loads((tmp_path / "load.json").read_text())
    assert saved["comparison"] == results["comparison"] and saved["machine"]["cpu"] and saved["machine"]["cores"] >= 1
    assert results["comparison"]["throughput_ratio"] > 0 and "× the baseline" in console.file.getvalue()


def test_load_benchmark_bounds_clients_and_time() -> None:
    bench = load_benchmark("search_load")
    for argv in (["--clients", "65"], ["--clients", "0"], ["--seconds", "301"], ["--upload-share", "2"],
                 ["--baseline", "/nonexistent"]):
        with pytest.raises(SystemExit):
            bench.parse_args(argv)
