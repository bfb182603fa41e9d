"""omnibind.scale.ann: the structure chosen from a memory budget, recall tuned to a target and checked on fresh
queries, and the saved index memory-mapped with the same answers."""

from __future__ import annotations

import json
from pathlib import Path

import faiss
import numpy as np
import pytest
from scale_data import clustered

from omnibind.errors import InputError
from omnibind.scale import ann


def test_hnsw_when_it_fits_else_the_largest_pq_code_that_fits() -> None:
    n, dim = 1_000_000, 768
    roomy = ann.choose(n, dim, 8 * 2**30)
    assert (roomy.kind, roomy.hnsw_m) == (ann.HNSW, ann.HNSW_M) and roomy.memory_bytes > n * 4 * dim
    tight = ann.choose(n, dim, 200 * 2**20)
    assert (tight.kind, tight.nlist, tight.pq_m) == (ann.IVFPQ, 1024, 96)
    assert tight.memory_bytes <= 200 * 2**20 < ann.hnsw_memory(n, dim)
    tighter = ann.choose(n, dim, 80 * 2**20)
    assert tighter.pq_m == 48 and tighter.factory() == "IVF1024,PQ48x8"
    assert ann.choose(n, dim, 80 * 2**20, opq=True).factory() == "OPQ48,IVF1024,PQ48x8"
    assert tighter.disk_bytes > n * 4 * dim  # the full vectors stay on disk for re-ranking
    with pytest.raises(InputError, match=r"memory budget: 10 MiB is too small .* \(expected at least 3\d MiB\)"):
        ann.choose(n, dim, 10 * 2**20)
    with pytest.raises(InputError, match="index kind: got 'lsh'"):
        ann.choose(n, dim, 2**30, "lsh")
    with pytest.raises(InputError, match="IVF-PQ over 500 vectors"):
        ann.choose(500, dim, 2**30, "ivfpq")


@pytest.mark.parametrize(("text", "size"), [("4GB", 4 * 2**30), ("512MiB", 512 * 2**20), ("2.5g", int(2.5 * 2**30)),
                                            ("1000", 1000)])
def test_sizes_parse(text: str, size: int) -> None:
    assert ann.parse_size(text) == size


def test_a_bad_size_is_named() -> None:
    with pytest.raises(InputError, match="memory budget: got 'lots'"):
        ann.parse_size("lots")


@pytest.mark.parametrize("kind", [ann.IVFPQ, ann.HNSW])
def test_tuned_recall_holds_on_fresh_queries_and_survives_saving(kind: str, tmp_path: Path) -> None:
    data = clustered(4200, 32)
    stored, fresh = data[:4000], data[4000:]
    ids = np.arange(4000, dtype=np.int64) * 7 + 3
    index = ann.from_arrays(ids, stored, 2**30, 0.95, kind=kind)
    assert index.params.kind == kind and index.params.recall_at_10 >= 0.95
    truth = ids[faiss.knn(fresh, stored, 10, faiss.METRIC_INNER_PRODUCT)[1]]
    scores, found = index.search(fresh, 10)
    assert ann.recall(found, truth) >= 0.9
    assert np.all(np.diff(scores, axis=1) <= 1e-6), "best first"

    index.save(tmp_path / "idx")
    opened = ann.AnnIndex.open(tmp_path / "idx")
    if kind == ann.IVFPQ:  # the full vectors, mapped from their own file, for re-ranking
        assert isinstance(opened.vectors, np.memmap)
    else:  # HNSW's vectors are its mapped storage: no second copy, no vectors file
        assert not opened.vectors.flags.owndata and not (tmp_path / "idx" / ann.VECTORS_FILE).exists()
    assert np.array_equal(opened.vectors, stored)
    if kind == ann.IVFPQ:
        lists = faiss.extract_index_ivf(opened.index).invlists
        assert "OnDisk" in type(faiss.downcast_InvertedLists(lists)).__name__
    assert opened.params == index.params
    again_scores, again = opened.search(fresh, 10)
    assert np.array_equal(again, found) and np.allclose(again_scores, scores)


def test_a_damaged_index_folder_is_named(tmp_path: Path) -> None:
    data = clustered(300, 16)
    index = ann.from_arrays(np.arange(300), data, 2**30, 0.9, kind=ann.HNSW)
    index.save(tmp_path / "idx")
    np.save(tmp_path / "idx" / ann.IDS_FILE, np.arange(5))
    with pytest.raises(InputError, match="idx: holds 300 indexed, 5 ids and 4800 floats"):
        ann.AnnIndex.open(tmp_path / "idx")
    (tmp_path / "idx" / ann.INDEX_FILE).write_bytes(b"garbage")
    with pytest.raises(InputError, match=r"index\.faiss: unreadable"):
        ann.AnnIndex.open(tmp_path / "idx")


def test_rerank_orders_candidates_exactly_and_pads() -> None:
    vectors = np.eye(4, dtype=np.float32)
    query = np.array([[0.1, 0.9, 0.5, 0.0]], dtype=np.float32)
    scores, rows = ann.rerank(vectors, query, np.array([[0, 2, 1, -1]]), 5)
    assert rows.tolist() == [[1, 2, 0, -1, -1]]
    assert np.allclose(scores[0, :3], [0.9, 0.5, 0.1])


def test_ef_construction_reaches_faiss_params_json_and_the_loaded_index(tmp_path: Path) -> None:
    assert ann.choose(1000, 16, 2**30, "hnsw").ef_construction == ann.EF_CONSTRUCTION == 80
    index = ann.from_arrays(np.arange(600), clustered(600, 16), 2**30, 0.9, kind=ann.HNSW, ef_construction=48)
    assert index.index.hnsw.efConstruction == 48 and index.params.ef_construction == 48
    assert "efConstruction=48" in index.params.describe()
    index.save(tmp_path / "idx")
    assert json.loads((tmp_path / "idx" / ann.PARAMS_FILE).read_text())["ef_construction"] == 48
    assert ann.AnnIndex.open(tmp_path / "idx").index.hnsw.efConstruction == 48


@pytest.mark.parametrize("value", [0, ann.EF_CONSTRUCTION_RANGE[0] - 1, ann.EF_CONSTRUCTION_RANGE[1] + 1, 64.5, True])
def test_an_ef_construction_out_of_bounds_is_named(value: object) -> None:
    with pytest.raises(InputError, match=rf"efConstruction: got {value!r} \(expected an integer from 32 to 4096\)"):
        ann.choose(1000, 16, 2**30, "hnsw", ef_construction=value)  # type: ignore[arg-type]


def test_gather_rows_from_a_mapped_file_equals_plain_indexing(tmp_path: Path) -> None:
    data = np.random.default_rng(3).standard_normal((5000, 8)).astype(np.float32)
    data.tofile(tmp_path / "vectors.f32")
    mapped = np.memmap(tmp_path / "vectors.f32", dtype=np.float32, mode="r").reshape(5000, 8)
    rows = np.random.default_rng(4).integers(0, 5000, (7, 64))  # 448 rows: read by the threads
    assert np.array_equal(ann.gather_rows(mapped, rows), data[rows])
    assert np.array_equal(ann.gather_rows(mapped, rows[:1, :3]), data[rows[:1, :3]])  # few rows: read in place
    assert np.array_equal(ann.gather_rows(data, rows), data[rows])  # in memory: plain indexing



def _vm_flags(path: Path) -> list[str]:
    """The VmFlags of this process's mappings of `path` (from /proc/self/smaps)."""
    flags, inside = [], False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        if "-" in line.split(" ", 1)[0] and len(line.split()) >= 5:
            inside = line.endswith(str(path))
        elif inside and line.startswith("VmFlags:"):
            flags.append(line)
    return flags


def test_an_ivfpq_index_maps_its_reranking_vectors_for_random_reads(tmp_path: Path) -> None:
    data = clustered(3000, 16, seed=5)
    ann.from_arrays(np.arange(3000), data, 2**30, 0.9, kind=ann.IVFPQ).save(tmp_path / "idx")
    opened = ann.AnnIndex.open(tmp_path / "idx")
    flags = _vm_flags((tmp_path / "idx" / ann.VECTORS_FILE).resolve())
    assert flags and all(" rr" in f for f in flags), flags  # MADV_RANDOM: no read-around per fault
    assert np.allclose(opened.vectors, data)
