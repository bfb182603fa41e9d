"""`omnibind index-dataset` / `search-dataset` over embed-dataset's Parquet shards, and the on-disk vector backend
behind `omnibind index --vector-index ondisk`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scale_data import Shards, by_pair, clustered
from typer.testing import CliRunner

import omnibind
from omnibind.cli import app
from omnibind.errors import InputError
from omnibind.scale import ann
from omnibind.scale.dataset_index import DatasetIndex, build_dataset_index
from omnibind.scale.embed import embed_dataset
from omnibind.search import backend
from omnibind.search.identity import identify
from omnibind.search.index import SearchIndex
from omnibind.search.ondisk import OnDiskBackend
from omnibind.search.vectors import FaissBackend

runner = CliRunner()


@pytest.fixture
def embedded(shards: Shards, checkpoint: Path, tmp_path: Path) -> Path:
    model = omnibind.load(checkpoint, device="cpu")
    embed_dataset(shards.pattern, model, identify(model, checkpoint).to_dict(), tmp_path / "emb", batch_size=4)
    return tmp_path / "emb"


def test_each_stored_vector_finds_its_own_key_first(embedded: Path, tmp_path: Path) -> None:
    built = build_dataset_index(embedded, tmp_path / "idx", memory_budget=2**30, kind="hnsw")
    assert sorted(built) == ["audio", "image", "text"]
    opened = DatasetIndex.open(tmp_path / "idx")
    assert opened.record["model"]["fingerprint"] and opened.embed_dim == 32
    for (key, modality), vector in by_pair(embedded).items():
        hits = opened.search(vector, 3, [modality])  # captions repeat every 12 examples: ties at score 1
        assert {m for _, m, _ in hits} == {modality} and hits[0][2] == pytest.approx(1, abs=1e-5)
        assert key in {k for k, _, score in hits if score > 1 - 1e-5}
    assert not list((tmp_path / "idx").glob(".tmp-*"))


def test_an_ivfpq_index_from_shards_streams_and_meets_its_target(tmp_path: Path) -> None:
    """Parquet written the way embed-dataset writes it, 3 shards of clustered vectors, IVF-PQ within 1 MiB."""
    from omnibind.scale import parquet

    data = clustered(3000, 32, seed=3)
    (tmp_path / "emb").mkdir()
    for part in range(3):
        rows = range(part * 1000, (part + 1) * 1000)
        parquet.write_part(tmp_path / "emb" / parquet.part_name(part),
                           {"key": [f"k{i}" for i in rows], "modality": ["image"] * 1000,
                            "source": ["synthetic"] * 1000, "meta": [None] * 1000}, data[part * 1000 :][:1000], 32)
    built = build_dataset_index(tmp_path / "emb", tmp_path / "idx", memory_budget=2**20, target_recall=0.9)
    params = built["image"]
    assert params.kind == ann.IVFPQ and params.memory_bytes <= 2**20 and params.recall_at_10 >= 0.9
    opened = DatasetIndex.open(tmp_path / "idx")
    assert opened.search(data[1234], 1) == [("k1234", "image", pytest.approx(1, abs=1e-5))]


def test_the_cli_builds_and_searches(embedded: Path, checkpoint: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["index-dataset", str(embedded), "--out", str(tmp_path / "idx"), "--modality", "text"])
    assert result.exit_code == 0, result.output
    assert "text: approximate search, HNSW" in " ".join(result.output.split())
    found = runner.invoke(app, ["search-dataset", str(tmp_path / "idx"), "a red cat", "--model", str(checkpoint),
                                "-k", "2"])
    assert found.exit_code == 0, found.output
    assert found.output.count("│ text ") == 2
    missing = runner.invoke(app, ["index-dataset", str(embedded), "--out", str(tmp_path / "x"), "--modality", "depth"])
    assert missing.exit_code == 2 and "holds no depth embeddings" in " ".join(missing.output.split())


def test_a_folder_without_shards_is_named(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"holds no part-\*\.parquet files"):
        build_dataset_index(tmp_path, tmp_path / "idx")


def parts(n: int, dim: int = 16) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    vectors = clustered(n, dim, seed=5)
    return {"image": (np.arange(10, 10 + n, dtype=np.int64), vectors),
            "audio": (np.array([1, 2], dtype=np.int64), vectors[:2])}


def test_ondisk_backend_saves_maps_and_replaces_the_faiss_cache(tmp_path: Path) -> None:
    options = {"backend": "ondisk", "approximate_above": 100, "memory_budget": 2**30, "target_recall": 0.95}
    FaissBackend.build(7, 16, parts(1200), {}).save(tmp_path)
    built = backend.kind(options).build(7, 16, parts(1200), options)
    assert isinstance(built, OnDiskBackend)
    described = built.describe()
    assert described["image"].kind == ann.HNSW and described["audio"].kind == "exact"
    built.save(tmp_path)
    assert not list(tmp_path.glob("vectors-g*")), "the FAISS cache it replaces is dropped"
    loaded = backend.load(tmp_path, 7, 16)
    assert isinstance(loaded, OnDiskBackend)
    assert isinstance(loaded.parts["image"], ann.AnnIndex) and not loaded.parts["image"].vectors.flags.owndata
    query = parts(1200)["image"][1][17]
    assert loaded.search(query, 5) == built.search(query, 5)
    assert loaded.search(query, 1)[0][0] == 27
    assert loaded.search(query, 3, ["audio"])[0][0] in (1, 2)
    assert backend.reuse(tmp_path, 7, 16, options) == described
    assert backend.reuse(tmp_path, 7, 16, {**options, "target_recall": 0.9}) is None
    assert backend.load(tmp_path, 8, 16) is None
    with pytest.raises(InputError, match="search options: backend: got 'annoy'"):
        backend.kind({"backend": "annoy"})
    with pytest.raises(InputError, match="unknown option"):
        OnDiskBackend.build(1, 16, parts(10), {"backend": "ondisk", "nprobe": 3})


@pytest.fixture
def media(media_files: dict[str, Path], tmp_path: Path) -> Path:
    """A folder holding one file of each kind of `media_files`."""
    folder = tmp_path / "media"
    folder.mkdir()
    for name, path in media_files.items():
        (folder / f"{name}{path.suffix}").write_bytes(path.read_bytes())
    return folder


def test_omnibind_index_and_search_use_the_ondisk_backend(media: Path, checkpoint: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["index", str(media), "--model", str(checkpoint), "--index", str(tmp_path / "idx"),
                                 "--vector-index", "ondisk", "--approximate-above", "0", "--memory-budget", "1GB"])
    assert result.exit_code == 0, result.output
    assert "approximate search, HNSW" in " ".join(result.output.split())
    opened = SearchIndex(tmp_path / "idx")
    assert isinstance(opened.vectors, OnDiskBackend)
    assert {info["kind"] for info in opened.stats()["search"].values()} == {ann.HNSW}
    manifest = json.loads(next((tmp_path / "idx").glob("ondisk-g*/manifest.json")).read_text())
    assert manifest["options"]["backend"] == "ondisk" and manifest["options"]["memory_budget"] == 2**30
    vector = opened.item_vector(1)
    assert vector is not None and opened.search(vector, 1)[0].item.id == 1


def test_omnibind_index_takes_the_ondisk_backends_ef_construction(media: Path, checkpoint: Path,
                                                                 tmp_path: Path) -> None:
    base = ["index", str(media), "--model", str(checkpoint), "--index", str(tmp_path / "idx")]
    result = runner.invoke(app, [*base, "--vector-index", "ondisk", "--approximate-above", "0",
                                 "--ef-construction", "40"])
    assert result.exit_code == 0, result.output
    assert "efConstruction=40" in " ".join(result.output.split())
    manifest = json.loads(next((tmp_path / "idx").glob("ondisk-g*/manifest.json")).read_text())
    assert manifest["options"]["ef_construction"] == 40
    for extra, problem in ((["--ef-construction", "40"], "given with --vector-index faiss"),
                           (["--vector-index", "ondisk", "--ef-construction", "1"], "got 1")):
        refused = runner.invoke(app, [*base, *extra])
        assert refused.exit_code != 0
        assert "--ef-construction" in refused.output and problem in refused.output, refused.output


def test_tuning_on_another_modality_as_queries(embedded: Path, tmp_path: Path) -> None:
    built = build_dataset_index(embedded, tmp_path / "idx", ["image"], memory_budget=2**30, kind="hnsw",
                                query_modality="text")
    params = built["image"]
    assert params.tuned_on == "text vectors" and params.recall_queries == 12 and params.count == 15
    assert "12 text vectors as queries" in params.describe()
    own = build_dataset_index(embedded, tmp_path / "own", ["image"], memory_budget=2**30, kind="hnsw")["image"]
    assert own.tuned_on == "vectors held out of the build" and own.recall_queries == 1
    assert DatasetIndex.open(tmp_path / "idx").parts["image"].count == 15


def synthetic_embeddings(folder: Path, n: int = 600, dim: int = 16) -> np.ndarray:
    """One Parquet part of clustered "image" vectors laid out as embed-dataset writes it."""
    from omnibind.scale import parquet

    data = clustered(n, dim, seed=4)
    folder.mkdir()
    parquet.write_part(folder / parquet.part_name(0), {"key": [f"k{i}" for i in range(n)], "modality": ["image"] * n,
                                                       "source": ["synthetic"] * n, "meta": [None] * n}, data, dim)
    return data


def test_ef_construction_reaches_the_built_dataset_index_and_its_params(tmp_path: Path) -> None:
    synthetic_embeddings(tmp_path / "emb")
    built = build_dataset_index(tmp_path / "emb", tmp_path / "idx", memory_budget=2**30, kind="hnsw",
                                ef_construction=40)
    assert built["image"].ef_construction == 40
    assert json.loads((tmp_path / "idx" / "image" / ann.PARAMS_FILE).read_text())["ef_construction"] == 40
    assert json.loads((tmp_path / "idx" / "index.json").read_text())["modalities"]["image"]["ef_construction"] == 40
    assert DatasetIndex.open(tmp_path / "idx").parts["image"].index.hnsw.efConstruction == 40
    with pytest.raises(InputError, match=r"efConstruction: got 5 \(expected an integer from 32 to 4096\)"):
        build_dataset_index(tmp_path / "emb", tmp_path / "bad", kind="hnsw", ef_construction=5)
    assert not (tmp_path / "bad").exists(), "refused before anything is written"


def test_the_cli_takes_ef_construction(tmp_path: Path) -> None:
    synthetic_embeddings(tmp_path / "emb")
    result = runner.invoke(app, ["index-dataset", str(tmp_path / "emb"), "--out", str(tmp_path / "idx"), "--kind",
                                 "hnsw", "--ef-construction", "64"])
    assert result.exit_code == 0, result.output
    assert "efConstruction=64" in " ".join(result.output.split())
    assert json.loads((tmp_path / "idx" / "image" / ann.PARAMS_FILE).read_text())["ef_construction"] == 64
    default = runner.invoke(app, ["index-dataset", str(tmp_path / "emb"), "--out", str(tmp_path / "dflt"),
                                  "--kind", "hnsw"])
    assert default.exit_code == 0, default.output
    assert DatasetIndex.open(tmp_path / "dflt").parts["image"].index.hnsw.efConstruction == ann.EF_CONSTRUCTION
    bad = runner.invoke(app, ["index-dataset", str(tmp_path / "emb"), "--out", str(tmp_path / "x"),
                              "--ef-construction", "10000"])
    assert bad.exit_code == 2 and "efConstruction: got 10000" in " ".join(bad.output.split())


def test_the_ondisk_backend_builds_with_its_ef_construction(tmp_path: Path) -> None:
    options = {"backend": "ondisk", "approximate_above": 100, "memory_budget": 2**30, "ef_construction": 48}
    built = OnDiskBackend.build(3, 16, parts(600), options)
    image = built.parts["image"]
    assert isinstance(image, ann.AnnIndex) and image.index.hnsw.efConstruction == 48
    built.save(tmp_path)
    manifest = json.loads(next(tmp_path.glob("ondisk-g*/manifest.json")).read_text())
    assert manifest["options"]["ef_construction"] == 48 and manifest["parts"]["image"]["ef_construction"] == 48
    loaded = OnDiskBackend.load(tmp_path, 3, 16)
    assert loaded is not None and loaded.parts["image"].index.hnsw.efConstruction == 48
    assert backend.reuse(tmp_path, 3, 16, {**options, "ef_construction": 96}) is None, "another value rebuilds"
    default = OnDiskBackend.build(4, 16, parts(600), {"backend": "ondisk", "approximate_above": 100})
    assert default.options["ef_construction"] == ann.EF_CONSTRUCTION == 80
    with pytest.raises(InputError, match=r"search options: ef_construction: got 'many'"):
        OnDiskBackend.build(5, 16, parts(10), {"backend": "ondisk", "ef_construction": "many"})
