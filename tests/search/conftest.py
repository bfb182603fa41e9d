"""Fixtures for search tests: tiny checkpoints, a media folder and an index built from it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import count
from pathlib import Path
from typing import Any

import pytest
from search_media import image_text_model, write_media

from helpers import tiny_model


@dataclass(frozen=True)
class Built:
    """An index folder, the media folder it covers and the checkpoint that built it."""

    index: Path
    media: Path
    model: Path


@pytest.fixture(scope="session")
def search_checkpoint(tmp_path_factory: pytest.TempPathFactory, spiece_model: Path) -> Path:
    """A saved tiny three-tower checkpoint, shared by the session (tests must not modify it)."""
    import omnibind

    return omnibind.save(tiny_model(spiece_model), tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture(scope="session")
def image_text_checkpoint(tmp_path_factory: pytest.TempPathFactory, spiece_model: Path) -> Path:
    """A saved tiny image–text checkpoint (no audio tower), like a SigLIP model."""
    import omnibind

    return omnibind.save(image_text_model(spiece_model), tmp_path_factory.mktemp("models") / "image_text")


@pytest.fixture(scope="session")
def built_index(tmp_path_factory: pytest.TempPathFactory, search_checkpoint: Path) -> Built:
    """Six drawings and three tones, indexed once for the session (tests must not modify it)."""
    import omnibind
    from omnibind.search import update_index

    root = tmp_path_factory.mktemp("built")
    media = root / "media"
    write_media(media)
    update_index(root / "index", media, omnibind.load(search_checkpoint), search_checkpoint, batch_size=4)
    return Built(root / "index", media, search_checkpoint)


@pytest.fixture
def media_dir(tmp_path: Path) -> Path:
    """A fresh media folder (six drawings, three tones) for tests that change files."""
    folder = tmp_path / "media"
    write_media(folder)
    return folder


DATABASES = count()


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Any]:
    """A throwaway PostgreSQL cluster with pgvector for the session (omnibind.search.pgcluster); skipped, with the
    reason, where PostgreSQL, pgvector or psycopg cannot be found."""
    pytest.importorskip("psycopg", reason="psycopg is not installed (pip install 'omnibind[postgres]')")
    from omnibind.search import pgcluster as clusters

    cluster = clusters.start()
    if isinstance(cluster, str):
        pytest.skip(cluster)
    try:
        missing = clusters.pgvector_missing(cluster)
        if missing:
            pytest.skip(missing)
        yield cluster
    finally:
        clusters.stop(cluster)


@pytest.fixture
def pg_url(pg_cluster: Any) -> str:
    """The URL of a new, empty database in the session's cluster, for one test."""
    from omnibind.search import pgcluster as clusters

    return clusters.create_database(pg_cluster, f"test{next(DATABASES)}")


@pytest.fixture(scope="session")
def caption_index(tmp_path_factory: pytest.TempPathFactory, spiece_model: Path) -> Built:
    """Six drawings and three tones indexed with a tiny mixed checkpoint (towers, t' and b, projections and a
    decoder: a captioning run's layout), whose embedding part built the index (tests must not modify it)."""
    import omnibind
    from generation.mixed_checkpoints import mixed_checkpoint
    from omnibind.search import update_index

    root = tmp_path_factory.mktemp("captioned")
    model = mixed_checkpoint(root / "model", spiece_model)
    write_media(root / "media")
    update_index(root / "index", root / "media", omnibind.load(model, kind="embedding"), model, batch_size=4)
    return Built(root / "index", root / "media", model)
