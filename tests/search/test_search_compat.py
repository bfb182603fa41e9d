"""An index written before the modality registry (schema 1: one column per metadata field; its model's
fingerprint hashed over the format-1 config layout) opens with today's code: the database is migrated in
place in one transaction (a failure or a kill mid-way leaves schema 1 intact), and the same model is
recognised, searched with and re-recorded by the next update."""

from __future__ import annotations

import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import omnibind
from helpers import tiny_model
from omnibind.errors import InputError
from omnibind.search import Searcher, SearchIndex, update_index
from omnibind.search import store as store_module
from omnibind.search.identity import fingerprint, legacy_fingerprints
from omnibind.search.store import DB_FILE, V1_META_COLUMNS, MediaInfo, Store

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "compat_v1"
V1_FINGERPRINT = "0ff4bcb12f245e52"  # recorded by the fixture's index

# Opens the index with a connection that SIGKILLs the process when the migration renames the new table:
# the rows are copied and the old table dropped, nothing is committed.
KILL_MID_MIGRATION = """
import os, signal, sqlite3, sys
connect = sqlite3.connect
def dying(*args, **kwargs):
    db = connect(*args, **kwargs)
    db.set_trace_callback(lambda sql: sql.startswith("ALTER TABLE") and os.kill(os.getpid(), signal.SIGKILL))
    return db
sqlite3.connect = dying
from omnibind.search.store import Store
Store(sys.argv[1])
"""


@pytest.fixture
def v1_index(tmp_path: Path) -> Path:
    """A copy of the schema-1 index (2 items, paths of the machine that wrote it)."""
    return Path(shutil.copytree(FIXTURE / "index", tmp_path / "index"))


def raw_rows(index: Path, columns: str) -> list[tuple]:
    with sqlite3.connect(index / DB_FILE) as db:
        return db.execute(f"SELECT {columns} FROM items ORDER BY id").fetchall()


def schema_version(index: Path) -> int:
    with sqlite3.connect(index / DB_FILE) as db:
        return int(db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0])


def test_schema_1_is_migrated_in_place_keeping_items(v1_index: Path) -> None:
    before = raw_rows(v1_index, f"id, path, modality, sha256, vector, {', '.join(V1_META_COLUMNS)}")
    store = Store(v1_index)
    try:
        assert store.meta("schema_version") == 2 and store.integrity_check() == "ok"
        records = store.items([row[0] for row in before])
    finally:
        store.close()
    assert schema_version(v1_index) == 2
    after = {row[0]: row for row in raw_rows(v1_index, "id, path, sha256, vector")}
    assert len(records) == len(after) == len(before) == 2
    for item_id, path, modality, sha256, vector, *columns in before:
        old_meta = {k: v for k, v in zip(V1_META_COLUMNS, columns, strict=True) if v is not None}
        record = records[item_id]
        assert (record.path, record.modality, record.sha256, record.meta) == (path, modality, sha256, old_meta)
        assert after[item_id] == (item_id, path, sha256, vector)
    image = next(r for r in records.values() if r.modality == "image")
    assert (image.width, image.height, image.duration) == (40, 30, None)
    assert image.to_dict()["width"] == 40 and "meta" not in image.to_dict()
    with sqlite3.connect(v1_index / DB_FILE) as db:
        columns = [row[1] for row in db.execute("PRAGMA table_info(items)")]
        indexes = [row[1] for row in db.execute("PRAGMA index_list(items)")]
    assert "meta" in columns and not set(V1_META_COLUMNS) & set(columns) and "items_modality" in indexes


def test_migration_keeps_the_id_counter(v1_index: Path) -> None:
    with sqlite3.connect(v1_index / DB_FILE) as db:
        db.execute("DELETE FROM items WHERE id = 2")  # ids are never reused: the next item is 3, not 2
    store = Store(v1_index)
    try:
        with store.transaction() as db:
            Store.add_items(db, [MediaInfo("/x/new.png", "image", 1, 1, "0" * 64, {"width": 1, "height": 1})],
                            np.zeros((1, 32), np.float32))
        assert sorted(store.items(range(1, 10))) == [1, 3]
    finally:
        store.close()


def test_a_failed_migration_leaves_schema_1(v1_index: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = raw_rows(v1_index, "*")
    monkeypatch.setattr(store_module, "MIGRATE_V1", (*store_module.MIGRATE_V1, "SELECT no_such_function()"))
    with pytest.raises(InputError, match="schema version 1 could not be upgraded"):
        Store(v1_index)
    assert schema_version(v1_index) == 1 and raw_rows(v1_index, "*") == before


def test_a_kill_mid_migration_leaves_schema_1(v1_index: Path) -> None:
    before = raw_rows(v1_index, "*")
    result = subprocess.run([sys.executable, "-c", KILL_MID_MIGRATION, str(v1_index)], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == -signal.SIGKILL, result.stderr
    assert schema_version(v1_index) == 1 and raw_rows(v1_index, "*") == before
    Store(v1_index).close()  # and the next open migrates it
    assert schema_version(v1_index) == 2


def test_the_same_model_is_recognised_searched_and_re_recorded(v1_index: Path, tmp_path: Path) -> None:
    model = omnibind.load(FIXTURE / "checkpoint")
    assert fingerprint(model) != V1_FINGERPRINT and V1_FINGERPRINT in legacy_fingerprints(model)
    searcher = Searcher(SearchIndex(v1_index), model, FIXTURE / "checkpoint")
    assert searcher.index.model.fingerprint == V1_FINGERPRINT
    hits = searcher.search("image", FIXTURE / "media" / "circle.png", k=5)
    assert len(hits) == 2 and Path(hits[0].item.path).name == "circle.png"
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert [h.item.modality for h in searcher.search("text", "a red circle", k=5, only=["audio"])] == ["audio"]

    media = Path(shutil.copytree(FIXTURE / "media", tmp_path / "media"))
    report = update_index(v1_index, media, model, FIXTURE / "checkpoint")
    assert (report.added, report.removed, report.failed) == (2, 0, [])
    assert report.totals == {"image": 2, "audio": 2}  # the old root's items are kept
    reopened = SearchIndex(v1_index)
    assert reopened.model.fingerprint == fingerprint(model)
    hits = Searcher(reopened, model).search("audio", media / "tone.wav", k=4, only=["audio"])
    assert {Path(h.item.path).name for h in hits} == {"tone.wav"} and len(hits) == 2
    assert hits[0].score == pytest.approx(1.0, abs=1e-5) and hits[1].score == pytest.approx(1.0, abs=1e-5)


def test_another_model_is_still_refused(v1_index: Path, spiece_model: Path) -> None:
    with pytest.raises(InputError, match="was built with model"):
        Searcher(SearchIndex(v1_index), tiny_model(spiece_model, seed=1), "other")
