"""The faiss side: exact below the threshold, IVF above it with its recall measured and reached, and the
on-disk cache rebuilt from SQLite when missing, damaged or stale, and picked up by a running reader."""

from __future__ import annotations

import shutil
from pathlib import Path

import faiss
import numpy as np
import pytest
from search_media import write_media

import omnibind
from omnibind.search import SearchIndex, update_index
from omnibind.search.ann import EXACT, IVF, RECALL_QUERIES, build_ivf, build_part, ivf_lists, recall_at_k


def clustered(n: int, dim: int = 32, clusters: int = 40, seed: int = 0) -> np.ndarray:
    """Unit vectors around random centres, like real embeddings (random data has no neighbours to find)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim))
    x = centres[rng.integers(0, clusters, n)] + 0.35 * rng.standard_normal((n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_small_parts_are_exact() -> None:
    vectors = clustered(100)
    index, info = build_part(np.arange(1, 101), vectors, approximate_above=100)
    assert info.kind == EXACT and info.count == 100 and index.ntotal == 100
    scores, ids = index.search(vectors[:1], 1)
    assert ids[0, 0] == 1 and scores[0, 0] == pytest.approx(1.0, abs=1e-5)


def test_ivf_reaches_its_target_recall_on_fresh_queries() -> None:
    data = clustered(4200)
    vectors, queries = data[:4000], data[4000:]  # fresh queries from the same distribution
    ids = np.arange(10, 4010, dtype=np.int64)
    index, info = build_part(ids, vectors, approximate_above=1000, target_recall=0.95)
    assert info.kind == IVF and info.nlist == ivf_lists(4000) == 63 and 1 <= info.nprobe <= info.nlist
    assert info.recall_at_10 >= 0.95 and info.recall_queries == RECALL_QUERIES
    truth = faiss.knn(queries, vectors, 10, faiss.METRIC_INNER_PRODUCT)[1]
    found = index.search(queries, 10)[1]
    recall = recall_at_k([set(row) for row in found], [set(ids[row]) for row in truth])
    assert recall >= 0.9
    assert "recall@10 = " in info.describe() and f"nprobe={info.nprobe}" in info.describe()


def test_random_vectors_fall_back_to_exact_search() -> None:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((4000, 256)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index, info = build_part(np.arange(4000), vectors, approximate_above=1000, target_recall=0.95)
    assert info.kind == EXACT and info.nprobe == 31 and info.nlist == 63 and info.recall_at_10 < 0.95
    assert isinstance(faiss.downcast_index(index.index), faiss.IndexFlatIP)
    assert "reached only recall@10" in info.describe() and "no faster than exact search" in info.describe()


def test_ivf_nprobe_grows_with_the_target() -> None:
    vectors = clustered(3000, clusters=300)
    low = build_ivf(np.arange(3000), vectors, target_recall=0.3)[1]
    high = build_ivf(np.arange(3000), vectors, target_recall=0.99)[1]
    assert low.nprobe <= high.nprobe and high.recall_at_10 >= 0.99


def test_index_above_threshold_uses_ivf_and_states_recall(media_dir: Path, tmp_path: Path,
                                                          search_checkpoint: Path) -> None:
    write_media(media_dir, images=40, sounds=0, start=10)
    model = omnibind.load(search_checkpoint)
    report = update_index(tmp_path / "index", media_dir, model, search_checkpoint, approximate_above=20)
    assert report.search["image"].kind == IVF and report.search["audio"].kind == EXACT
    assert report.search["image"].recall_at_10 >= 0.95
    opened = SearchIndex(tmp_path / "index")
    assert opened.stats()["search"]["image"]["kind"] == IVF
    query = model.encode("image", media_dir / "picture012.png").detach().numpy()[0]
    assert Path(opened.search(query, k=1)[0].item.path).name == "picture012.png"


def cache_dirs(index: Path) -> list[Path]:
    return sorted(p for p in index.iterdir() if p.name.startswith(("vectors-", ".vectors-")))


@pytest.mark.parametrize("damage", ["missing", "truncated", "bad-manifest"])
def test_missing_or_damaged_cache_is_rebuilt(built_index, tmp_path: Path, damage: str) -> None:
    index = tmp_path / "index"
    shutil.copytree(built_index.index, index)
    (cache,) = cache_dirs(index)
    if damage == "missing":
        shutil.rmtree(cache)
    elif damage == "truncated":
        data = (cache / "image.faiss").read_bytes()
        (cache / "image.faiss").write_bytes(data[: len(data) // 2])
    else:
        (cache / "manifest.json").write_text("{not json")
    opened = SearchIndex(index)
    assert opened.vectors.count == 9
    assert [p.name for p in cache_dirs(index)] == [cache.name]  # rebuilt and saved again
    assert SearchIndex(index).vectors.count == 9


def test_unpublished_cache_leaves_a_stale_index_that_is_rebuilt(media_dir: Path, tmp_path: Path,
                                                                search_checkpoint: Path) -> None:
    model = omnibind.load(search_checkpoint)
    update_index(tmp_path / "index", media_dir, model, search_checkpoint)
    write_media(media_dir, images=2, sounds=0, start=30)

    def fail(step: str) -> None:
        if step == "vectors-written":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        update_index(tmp_path / "index", media_dir, model, search_checkpoint, on_step=fail)
    assert not any(p.name.startswith(".vectors-tmp-") for p in cache_dirs(tmp_path / "index"))
    opened = SearchIndex(tmp_path / "index")
    assert opened.vectors.count == 11 and opened.vectors.generation == opened.store.generation()


def test_running_reader_picks_up_an_update(media_dir: Path, tmp_path: Path, search_checkpoint: Path) -> None:
    model = omnibind.load(search_checkpoint)
    update_index(tmp_path / "index", media_dir, model, search_checkpoint)
    reader = SearchIndex(tmp_path / "index")
    new = write_media(media_dir, images=1, sounds=0, start=40)[0]
    (media_dir / "tone000.wav").unlink()
    update_index(tmp_path / "index", media_dir, model, search_checkpoint)
    assert reader.refresh(force=True)
    assert reader.vectors.count == 9
    query = model.encode("image", new).detach().numpy()[0]
    assert reader.search(query, k=1)[0].item.path == str(new.resolve())
    assert not reader.refresh(force=True)
