"""Smoke tests of benchmarks/pg_scale.py at tiny sizes: it starts its own throwaway cluster, loads, builds, prints
its table and writes sane numbers (timings themselves are never asserted); bad arguments are argparse errors.
Skipped, saying why, where PostgreSQL, pgvector or psycopg are absent (through the pg_cluster fixture)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rich.console import Console

from helpers import load_benchmark


def run(tmp_path: Path, *args: str) -> tuple[dict[str, Any], str]:
    console = Console(file=io.StringIO(), width=200)
    out = tmp_path / "pg_scale.json"
    results = load_benchmark("pg_scale").main([*args, "--queries", "40", "--latency-queries", "10", "--shared-buffers",
                                            "64MB", "--maintenance-work-mem", "128MB", "--json", str(out)],
                                           console=console)
    assert json.loads(out.read_text()) == results
    return results, console.file.getvalue()


def test_tiny_run_reports_load_build_size_recall_and_latency(pg_cluster: Any, tmp_path: Path) -> None:
    results, printed = run(tmp_path, "--n", "3000", "--dim", "16", "--data", "clustered", "--ef-search", "10,40")
    rows = results["rows"]
    assert [(r["index"], r["ef_search"]) for r in rows] == [
        ("HNSW (pgvector)", 10), ("HNSW (pgvector)", 40), ("exact (sequential scan in PostgreSQL)", None)]
    assert all(0 <= r["recall_at_10"] <= 1 and 0 < r["p50_ms"] <= r["p99_ms"] for r in rows)
    assert [r["timed_queries"] for r in rows] == [10, 10, 20]
    assert rows[-1]["recall_at_10"] > 0.99  # exact search in the database agrees with faiss' (up to float ties)
    assert (results["n"], results["dim"], results["queries"], results["modality"]) == (3000, 16, 40, "vector")
    assert results["built"] == ["vector"] and results["hnsw"] == {"m": 16, "ef_construction": 64,
                                                                  "opclass": "vector_ip_ops"}
    assert results["settings"]["maintenance_work_mem"] == "128MB" and results["pgvector"]
    assert all(results[key] > 0 for key in ("load_s", "build_s", "table_bytes_per_vector", "hnsw_bytes_per_vector",
                                            "other_index_bytes_per_vector"))
    assert results["total_bytes_per_vector"] > 16 * 4 and results["machine"]["cores"] >= 1
    assert "recall@10" in printed and "p99 ms" in printed and "bytes per vector: table" in printed


def test_embeddings_folder(pg_cluster: Any, tmp_path: Path) -> None:
    from omnibind.scale import parquet

    rng = np.random.default_rng(0)
    folder = tmp_path / "emb"
    folder.mkdir()
    parquet.write_plan(folder, {"model": "tiny", "embed_dim": 8, "source": "test"})
    for part, (modality, count) in enumerate((("text", 60), ("image", 1200))):
        vectors = rng.standard_normal((count, 8)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        rows = {"key": [f"{modality}{i}" for i in range(count)], "modality": [modality] * count,
                "source": ["test"] * count, "meta": [None] * count}
        parquet.write_part(folder / parquet.part_name(part), rows, vectors, 8)
    results, _ = run(tmp_path, "--embeddings", str(folder), "--n", "1000", "--ef-search", "40", "--exact-up-to", "0")
    assert (results["data"], results["n"], results["dim"], results["modality"]) == ("real", 1000, 8, "image")
    assert [r["ef_search"] for r in results["rows"]] == [40] and 0 <= results["rows"][0]["recall_at_10"] <= 1


@pytest.mark.parametrize(("args", "message"), [
    (["--n", "10"], "--n must be from 1,000 to 100,000,000 (got 10)"),
    (["--dim", "4096"], "--dim must be from 2 to 2,000"),
    (["--queries", "5", "--latency-queries", "6"], "--latency-queries must be from 1 to 5"),
    (["--ef-search", "5,40"], "--ef-search values must be from 10 (k) to 1000"),
    (["--ef-search", "a"], "--ef-search must be comma-separated integers"),
    (["--maintenance-work-mem", "2G"], "--maintenance-work-mem must be a size such as 512MB or 4GB"),
    (["--data", "real"], "--data real needs --embeddings DIR"),
    (["--embeddings", "/no/such/folder"], "--embeddings /no/such/folder: no such folder"),
])
def test_bad_arguments_are_argparse_errors(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        load_benchmark("pg_scale").parse_args(args)
    assert exit_.value.code == 2 and message in capsys.readouterr().err
