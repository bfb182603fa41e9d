"""Incremental indexing: what a first run stores, and that later runs embed only new or changed files, drop
deleted ones, re-stamp touched ones, remember undecodable ones, and refuse a different model."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
from search_media import picture, write_media

import omnibind
from helpers import tiny_model
from omnibind.errors import InputError
from omnibind.search import Searcher, SearchIndex, update_index
from omnibind.search.lock import writer_lock


def run(index: Path, media: Path, checkpoint: Path, **kwargs):
    return update_index(index, media, omnibind.load(checkpoint), checkpoint, batch_size=4, **kwargs)


def all_items(index: Path) -> dict[str, object]:
    opened = SearchIndex(index)
    try:
        ids = range(1, 1000)
        return {record.path: record for record in opened.store.items(list(ids)).values()}
    finally:
        opened.close()


def test_first_run_stores_metadata_and_the_models_vectors(built_index) -> None:
    files = sorted(p for p in built_index.media.rglob("*") if p.is_file())
    items = all_items(built_index.index)
    assert sorted(items) == [str(p.resolve()) for p in files]
    model = omnibind.load(built_index.model)
    opened = SearchIndex(built_index.index)
    for path in files:
        record = items[str(path.resolve())]
        assert record.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
        assert record.size == path.stat().st_size and record.mtime_ns == path.stat().st_mtime_ns
        if record.modality == "image":
            assert (record.width, record.height) == (48, 40) and record.duration is None
        else:
            assert record.duration == pytest.approx(0.5) and record.sample_rate == 16000 and record.channels == 1
        expected = model.encode(record.modality, path).detach().numpy()[0]
        hits = opened.search(expected, k=1, modalities=[record.modality])
        assert hits[0].item.id == record.id and hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert opened.stats()["modalities"] == {"image": 6, "audio": 3}
    assert all(info["kind"] == "exact" for info in opened.stats()["search"].values())


def test_second_run_embeds_nothing_and_keeps_the_cache(built_index, tmp_path: Path) -> None:
    index = tmp_path / "index"
    first = run(index, built_index.media, built_index.model)
    caches = sorted(p.name for p in index.iterdir() if p.name.startswith("vectors-"))
    second = run(index, built_index.media, built_index.model)
    assert first.added == 9 and second.embedded == 0 and second.unchanged == 9
    assert sorted(p.name for p in index.iterdir() if p.name.startswith("vectors-")) == caches


def test_new_changed_touched_and_deleted_files(media_dir: Path, tmp_path: Path, search_checkpoint: Path) -> None:
    index = tmp_path / "index"
    run(index, media_dir, search_checkpoint)
    before = all_items(index)
    changed, touched, deleted = media_dir / "picture000.png", media_dir / "picture002.png", media_dir / "tone001.flac"
    picture(7).save(changed)
    os.utime(touched, ns=(touched.stat().st_atime_ns, touched.stat().st_mtime_ns + 5_000_000_000))
    deleted.unlink()
    new = write_media(media_dir, images=1, sounds=0, start=20)[0]

    report = run(index, media_dir, search_checkpoint)
    assert (report.added, report.changed, report.restamped, report.removed) == (1, 1, 1, 1)
    assert report.unchanged == 6 and report.embedded == 2
    after = all_items(index)
    resolved = {name: str(p.resolve()) for name, p in
                {"changed": changed, "touched": touched, "deleted": deleted, "new": new}.items()}
    assert resolved["deleted"] not in after and resolved["new"] in after
    assert after[resolved["changed"]].id != before[resolved["changed"]].id  # new content, new id
    assert after[resolved["touched"]].id == before[resolved["touched"]].id
    assert after[resolved["touched"]].mtime_ns == touched.stat().st_mtime_ns
    opened = SearchIndex(index)
    assert opened.item(before[resolved["deleted"]].id) is None
    assert opened.stats()["items"] == 9
    query = omnibind.load(search_checkpoint).encode("image", changed).detach().numpy()[0]
    assert opened.search(query, k=1)[0].item.path == resolved["changed"]


def test_undecodable_file_is_reported_once_then_indexed_when_fixed(media_dir: Path, tmp_path: Path,
                                                                   search_checkpoint: Path) -> None:
    broken = media_dir / "broken.png"
    broken.write_bytes(b"this is not a picture")
    first = run(tmp_path / "index", media_dir, search_checkpoint)
    assert [path for path, _ in first.failed] == [str(broken.resolve())]
    assert "not a recognised image format" in first.failed[0][1]
    second = run(tmp_path / "index", media_dir, search_checkpoint)
    assert second.failed == [] and second.embedded == 0
    picture(3).save(broken, format="PNG")
    third = run(tmp_path / "index", media_dir, search_checkpoint)
    assert third.added == 1 and third.failed == []


def test_a_different_model_is_refused(built_index, tmp_path: Path, spiece_model: Path) -> None:
    other = omnibind.save(tiny_model(spiece_model, seed=1), tmp_path / "other")
    with pytest.raises(InputError, match=r"was built with model .* not .*other") as caught:
        update_index(built_index.index, built_index.media, omnibind.load(other), other)
    assert "--model" in str(caught.value)
    with pytest.raises(InputError, match="was built with model"):
        Searcher(SearchIndex(built_index.index), omnibind.load(other), other)


def test_image_text_model_skips_sounds_and_refuses_audio_queries(media_dir: Path, tmp_path: Path,
                                                                 image_text_checkpoint: Path) -> None:
    report = run(tmp_path / "index", media_dir, image_text_checkpoint)
    assert report.skipped == {"audio": 3} and report.totals == {"image": 6}
    searcher = Searcher(SearchIndex(tmp_path / "index"), omnibind.load(image_text_checkpoint))
    assert searcher.query_modalities == ("text", "image")
    with pytest.raises(InputError, match="cannot embed audio queries: it has no audio tower"):
        searcher.search("audio", str(media_dir / "tone000.wav"))
    assert len(searcher.search("text", "a red circle", k=3)) == 3


def test_a_second_writer_is_refused(built_index, tmp_path: Path) -> None:
    index = tmp_path / "index"
    with writer_lock(index) as held:
        assert held
        with pytest.raises(InputError, match="another process is updating this index"):
            run(index, built_index.media, built_index.model)


def test_search_filters_limits_and_empty_index(built_index, tmp_path: Path) -> None:
    searcher = Searcher(SearchIndex(built_index.index), omnibind.load(built_index.model))
    assert {hit.item.modality for hit in searcher.search("text", "a sound", k=50, only=["audio"])} == {"audio"}
    hits = searcher.search("text", "a blue square", k=50)
    assert len(hits) == 9 and [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    with pytest.raises(InputError, match="k: got 0"):
        searcher.search("text", "x", k=0)
    with pytest.raises(InputError, match="unknown modality 'video'"):
        searcher.search("text", "x", only=["video"])
    with pytest.raises(InputError, match="text: empty text"):
        searcher.search("text", "   ")

    empty = tmp_path / "empty"
    empty.mkdir()
    report = run(tmp_path / "empty-index", empty, built_index.model)
    assert report.totals == {}
    assert SearchIndex(tmp_path / "empty-index").search(np.ones(32, np.float32) / 32**0.5) == []


def test_bad_arguments_name_the_input(built_index, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such folder"):
        run(tmp_path / "index", tmp_path / "missing", built_index.model)
    with pytest.raises(InputError, match="is a folder of other files"):
        run(built_index.media, built_index.media, built_index.model)  # the media folder given as --index
    with pytest.raises(InputError, match="not an omnibind index"):
        SearchIndex(tmp_path)
