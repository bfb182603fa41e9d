"""Fixtures for the scale tests: tiny shards of real-format media, a tiny saved model, one faiss thread."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from scale_data import Shards, write_media_manifest

from helpers import tiny_model
from omnibind.data.pack import pack

N_EXAMPLES = 23  # prime, so batches and shards never divide it evenly
SHARD_SIZE = 4


@pytest.fixture(autouse=True)
def one_faiss_thread() -> Iterator[None]:
    """One OpenMP thread for faiss: on a few busy shared cores, spinning thread teams make builds 10x slower."""
    import faiss

    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(before)


def _packed(folder: Path, shard_size: int) -> Shards:
    manifest, modalities = write_media_manifest(folder / "files", N_EXAMPLES)
    report = pack(manifest, folder / "shards", shard_size=shard_size, show_progress=False)
    pairs = {(key, m) for key, chosen in modalities.items() for m in chosen}
    return Shards(report.pattern, len(report.paths), pairs)


@pytest.fixture(scope="session")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Shards:
    """23 examples with every modality combination, packed into 6 shards of at most 4."""
    return _packed(tmp_path_factory.mktemp("scale_set"), SHARD_SIZE)


@pytest.fixture(scope="session")
def many_shards(tmp_path_factory: pytest.TempPathFactory) -> Shards:
    """The same 23 examples, one per shard: many short units, so a kill at a random moment finds work left."""
    return _packed(tmp_path_factory.mktemp("scale_many"), 1)


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory: pytest.TempPathFactory, spiece_model: Path) -> Path:
    """A saved tiny three-tower checkpoint (embedding size 32)."""
    import omnibind

    return omnibind.save(tiny_model(spiece_model), tmp_path_factory.mktemp("scale_model") / "tiny")
