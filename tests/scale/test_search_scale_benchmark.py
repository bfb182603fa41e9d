"""benchmarks/search_scale.py on real-item embeddings at tiny sizes: from an embed-dataset folder, and from a
model over augmented pictures; it runs, names its data and reports sane numbers (timings are never asserted)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from rich.console import Console
from scale_data import Shards, clustered

from helpers import load_benchmark
from omnibind.scale import parquet


def bench() -> ModuleType:
    return load_benchmark("search_scale")


def check(results: dict, n: int, printed: str) -> None:
    rows = results["rows"]
    assert rows[0]["index"].startswith("exact") and rows[0]["recall_at_10"] == 1.0 and results["n"] == n
    assert {r["index"].split(",")[0] for r in rows[1:]} == {"HNSW", "IVF-PQ + re-ranking"}
    assert all(0 <= r["recall_at_10"] <= 1 and 0 < r["p50_ms"] <= r["p99_ms"] for r in rows)
    tuned = [r for r in rows if "(tuned)" in r["index"]]
    assert len(tuned) == 2 and all(r["disk_bytes_per_vector"] > 4 * results["dim"] for r in tuned)
    assert "embeddings an omnibind model made of real items" in results["data_case"]
    assert "recall@10" in printed and "disk B/vec" in printed


def test_real_embeddings_from_an_embed_dataset_folder(tmp_path: Path) -> None:
    data = clustered(3050, 24, seed=9)
    (tmp_path / "emb").mkdir()
    rows = {"key": [f"k{i}" for i in range(3050)], "modality": ["image"] * 3000 + ["text"] * 50,
            "source": ["s"] * 3050, "meta": [None] * 3050}
    parquet.write_part(tmp_path / "emb" / parquet.part_name(0), rows, data, 24)
    console = Console(file=io.StringIO(), width=200)
    results = bench().main(["--data", "real", "--embeddings", str(tmp_path / "emb"), "--n", "2500", "--kinds",
                            "hnsw,ivfpq", "--queries", "40", "--latency-queries", "5", "--threads", "1",
                            "--json", str(tmp_path / "out.json")], console=console)
    check(results, 2500, console.file.getvalue())
    assert results["queries"] == 40 and "the first 40 text embeddings" in results["source"]
    assert json.loads((tmp_path / "out.json").read_text())["rows"] == results["rows"]


def test_real_embeddings_of_augmented_pictures(shards: Shards, checkpoint: Path, tmp_path: Path) -> None:
    console = Console(file=io.StringIO(), width=200)
    results = bench().main(["--data", "real", "--model", str(checkpoint), "--starter", shards.pattern, "--n", "2000",
                            "--kinds", "hnsw,ivfpq", "--queries", "30", "--latency-queries", "5", "--threads", "1",
                            "--work", str(tmp_path / "work"), "--save-embeddings", str(tmp_path / "saved"),
                            "--json", str(tmp_path / "out.json")], console=console)
    check(results, 2000, console.file.getvalue())
    assert "starter pictures" in results["source"] and "text → picture" in results["source"]
    stored = np.memmap(tmp_path / "work" / "vectors.f32", dtype=np.float32, mode="r").reshape(-1, 32)
    assert len(stored) == 2000 and np.allclose(np.linalg.norm(stored, axis=1), 1, atol=1e-4)
    assert len({tuple(np.round(v, 4)) for v in stored[:200]}) > 150, "augmentations give distinct vectors"

    # the saved folder gives a later run the same stored vectors and the same measured queries
    again = bench().main(["--data", "real", "--embeddings", str(tmp_path / "saved"), "--n", "2000", "--kinds", "hnsw",
                          "--queries", "30", "--latency-queries", "5", "--threads", "1",
                          "--json", str(tmp_path / "again.json")], console=Console(file=io.StringIO()))
    assert again["rows"][0]["recall_at_10"] == 1.0 and again["n"] == 2000
    saved = np.concatenate([v for _, _, v in parquet.iter_vectors(tmp_path / "saved", "image")])
    assert np.array_equal(saved, np.asarray(stored))
    assert parquet.count_rows(tmp_path / "saved", "text") == 30 + 512


def test_cold_rows_and_ef_construction(tmp_path: Path) -> None:
    from omnibind.scale import ann, pagecache

    if pagecache.storage(tmp_path).get("fstype") in ("tmpfs", "ramfs"):
        pytest.skip(f"{tmp_path} is on tmpfs: nothing to evict to, --cold refuses it")
    console = Console(file=io.StringIO(), width=240)
    results = bench().main(["--data", "clustered", "--n", "2000", "--dim", "16", "--kinds", "hnsw,ivfpq",
                            "--queries", "20", "--latency-queries", "3", "--cold", "--cold-queries", "2",
                            "--ef-construction", "48", "--threads", "1", "--work", str(tmp_path / "work"),
                            "--json", str(tmp_path / "out.json")], console=console)
    warm = [r for r in results["rows"] if r["cache"] == "warm"]
    cold = [r for r in results["rows"] if r["cache"] == "cold"]
    assert [r["index"] for r in cold] == [r["index"] for r in warm], "every row reads files: each has a cold twin"
    assert cold[0]["index"].startswith("exact") and cold[0]["evicted_files"] == ["vectors.f32"]
    assert all(0 < r["p50_ms"] <= r["p99_ms"] for r in cold) and results["cold_queries"] == 2
    ivfpq = next(r for r in cold if r["index"].startswith("IVF-PQ"))
    assert {"idx-ivfpq/vector/vectors.f32", "idx-ivfpq/vector/index.ivfdata"} <= set(ivfpq["evicted_files"])
    for row in cold:  # what eviction left in memory: at most a partial page per file
        assert row["resident_after_evict_bytes_max"] <= pagecache.PAGE * len(row["evicted_files"]), row
    assert results["storage"]["fstype"] and "madvise" in results["eviction"]

    hnsw = [r for r in results["rows"] if r["index"].startswith("HNSW")]
    assert hnsw and all(r["ef_construction"] == 48 and "ef_construction=48" in r["settings"] for r in hnsw)
    assert results["hnsw_params"]["ef_construction"] == 48 == results["ef_construction"]
    assert ann.AnnIndex.open(tmp_path / "work" / "idx-hnsw" / "vector").index.hnsw.efConstruction == 48
    assert json.loads((tmp_path / "out.json").read_text())["rows"] == results["rows"]
    printed = " ".join(console.file.getvalue().split())
    assert "cold rows: 2 single queries each" in printed and "cache" in printed


def test_cold_scope_vectors_leaves_the_ivfpq_codes_in_memory(tmp_path: Path) -> None:
    from omnibind.scale import pagecache

    if pagecache.storage(tmp_path).get("fstype") in ("tmpfs", "ramfs"):
        pytest.skip(f"{tmp_path} is on tmpfs: nothing to evict to, --cold refuses it")
    results = bench().main(["--data", "clustered", "--n", "2000", "--dim", "16", "--kinds", "hnsw,ivfpq",
                            "--queries", "20", "--latency-queries", "3", "--cold", "--cold-queries", "2",
                            "--cold-scope", "vectors", "--threads", "1", "--work", str(tmp_path / "work"),
                            "--json", str(tmp_path / "out.json")], console=Console(file=io.StringIO()))
    cold = {r["index"].split(",")[0]: r for r in results["rows"] if r["cache"] == "cold"}
    assert cold["IVF-PQ + re-ranking"]["evicted_files"] == ["idx-ivfpq/vector/vectors.f32"]
    assert "idx-hnsw/vector/index.faiss" in cold["HNSW"]["evicted_files"]
    assert results["cold_scope"] == "vectors"


@pytest.mark.parametrize(("argv", "message"), [
    (["--ef-construction", "8"], "--ef-construction must be from 32 to 4096 (got 8)"),
    (["--ef-construction", "5000"], "--ef-construction must be from 32 to 4096 (got 5000)"),
    (["--cold-queries", "5"], "--cold-queries must be positive and goes with --cold"),
    (["--cold", "--cold-queries", "0"], "--cold-queries must be positive and goes with --cold"),
    (["--cold-scope", "vectors"], "--cold-scope goes with --cold")])
def test_cold_and_ef_construction_options_are_checked(argv: list[str], message: str,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        bench().parse_args(["--n", "2000", *argv])
    assert message in capsys.readouterr().err
