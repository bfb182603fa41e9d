"""The index's source of truth: one SQLite database (WAL) holding every item's metadata and its vector.

Every change is one transaction that also bumps a generation counter, so a process killed at any point
leaves the previous or the next consistent state, and the vector cache knows when it is stale.

What an item's modality records about it (an image's width and height, a sound's duration, sample rate and
channels, whatever a plugin modality's `describe()` returns) lives in one JSON column, `meta`, so a new
modality needs no schema change. Records flatten it for their readers: `record.to_dict()` (the CLI's and the
HTTP API's JSON) puts its keys beside the fixed fields, and `record.width` reads a key (None when absent).
An index of schema 1 (one column per built-in metadata field) is migrated in place when opened, in one
SQLite transaction, so a process killed mid-migration leaves the schema-1 database as it was.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from omnibind.errors import InputError
from omnibind.fsutil import fsync_path

if TYPE_CHECKING:
    from omnibind.search.backend import VectorBackend

DB_FILE = "index.sqlite"
SCHEMA_VERSION = 2
ITEMS_TABLE = """
CREATE TABLE {name} (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT NOT NULL UNIQUE,
    modality TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    meta TEXT NOT NULL DEFAULT '{{}}',
    indexed_at REAL NOT NULL,
    vector BLOB NOT NULL
)"""
ITEMS_INDEX = "CREATE INDEX IF NOT EXISTS items_modality ON items (modality)"
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
{ITEMS_TABLE.format(name="items")};
{ITEMS_INDEX};
CREATE TABLE IF NOT EXISTS failures (
    path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, error TEXT NOT NULL
);
"""
ITEM_COLUMNS = ("id", "path", "modality", "size", "mtime_ns", "sha256", "meta", "indexed_at")
V1_META_COLUMNS = ("width", "height", "duration", "sample_rate", "channels")
# Schema 1 → 2: the per-field metadata columns folded into `meta` (json_patch onto '{}' drops the NULLs).
V1_META = "json_patch('{}', json_object(" + ", ".join(f"'{c}', {c}" for c in V1_META_COLUMNS) + "))"
MIGRATE_V1 = (
    ITEMS_TABLE.format(name="items_v2"),
    f"INSERT INTO items_v2 ({', '.join(ITEM_COLUMNS)}, vector) SELECT {', '.join(ITEM_COLUMNS[:6])}, {V1_META}, "
    "indexed_at, vector FROM items",
    "DROP TABLE items",
    "ALTER TABLE items_v2 RENAME TO items",
    ITEMS_INDEX,
)
MAX_ITEM_ID = 2**63 - 1  # SQLite's INTEGER range; larger ids cannot exist


@dataclass(frozen=True)
class MediaInfo:
    """What the index records about one media file besides its vector; `meta` is what its modality's
    `describe()` returned (read its keys as attributes: `info.width`, None when absent)."""

    path: str
    modality: str
    size: int
    mtime_ns: int
    sha256: str
    meta: dict[str, Any] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        """A metadata key as an attribute (`record.duration`); None for keys this item's modality lacks."""
        if name.startswith("_"):
            raise AttributeError(name)
        return self.__dict__.get("meta", {}).get(name)


@dataclass(frozen=True)
class ItemRecord(MediaInfo):
    """An indexed item: its id (stable until the file's content changes) plus its metadata."""

    id: int = 0
    indexed_at: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form for the CLI and the HTTP API: id first, the metadata keys flattened in (a key
        that would shadow a fixed field is left out)."""
        fixed = {"id": self.id, "path": self.path, "modality": self.modality, "size": self.size,
                 "mtime_ns": self.mtime_ns, "sha256": self.sha256}
        extra = {k: v for k, v in self.meta.items() if k not in RESERVED}
        return {**fixed, **extra, "indexed_at": self.indexed_at}


RESERVED = frozenset({*ITEM_COLUMNS, "score", "name", "thumbnail_url", "media_url"})
"""Keys of an item's JSON that metadata cannot take (fixed fields, and those the CLI and the API add)."""


@dataclass(frozen=True)
class KnownFile:
    """What an incremental run compares against the file system: id, size, mtime and content hash."""

    id: int
    size: int
    mtime_ns: int
    sha256: str


class IndexStore(Protocol):
    """What the indexer, the search index and the service need of an index's store: this module's SQLite folder
    (`Store`), or a PostgreSQL database (omnibind.search.pgstore.PgStore). `db` is what `transaction()` yields."""

    @property
    def name(self) -> str:
        """How messages name the index: its folder, or its database URL without the password."""
        ...

    @property
    def folder(self) -> Path | None:
        """The index folder (vector caches and the writer lock live there); None for a server store."""
        ...

    def meta(self, key: str) -> Any: ...
    def set_meta(self, values: dict[str, Any]) -> None: ...
    def generation(self) -> int: ...
    def transaction(self, bump: bool = True) -> AbstractContextManager[Any]: ...
    def known_files(self, root: str) -> dict[str, KnownFile]: ...
    def known_failures(self, root: str) -> dict[str, tuple[int, int, str]]: ...
    def add_items(self, db: Any, infos: Sequence[MediaInfo], vectors: np.ndarray) -> None: ...
    def touch_items(self, db: Any, infos: Iterable[MediaInfo]) -> None: ...
    def add_failures(self, db: Any, failures: Iterable[tuple[str, int, int, str]]) -> None: ...
    def remove_paths(self, db: Any, paths: Sequence[str]) -> None: ...
    def item(self, item_id: int) -> ItemRecord | None: ...
    def items(self, ids: Sequence[int]) -> dict[int, ItemRecord]: ...
    def vector(self, item_id: int, dim: int) -> np.ndarray | None: ...
    def counts(self) -> dict[str, int]: ...
    def failures(self) -> list[tuple[str, str]]: ...
    def snapshot(self, dim: int) -> tuple[int, dict[str, tuple[np.ndarray, np.ndarray]]]: ...
    def integrity_check(self) -> str: ...
    def close(self) -> None: ...

    def own_vectors(self, embed_dim: int) -> VectorBackend | None:
        """The store's own live vector search (a server store indexes its vectors itself), or None when the
        installed backend kind builds them from `snapshot` and caches them in `folder` (SQLite + FAISS)."""
        ...


def is_server_url(location: object) -> bool:
    """Whether an index location names a database server (postgresql://...) rather than an index folder."""
    return isinstance(location, str) and location.startswith(("postgresql://", "postgres://"))


def open_store(location: str | Path) -> IndexStore:
    """The index at `location`, for reading: an index folder, or a postgresql:// URL."""
    if is_server_url(location):
        from omnibind.search.pgstore import PgStore

        return PgStore(str(location))
    return Store(location)


@contextmanager
def open_writer(location: str | Path, initial_meta: dict[str, Any]) -> Iterator[IndexStore]:
    """The index at `location` opened by its one writer (created with `initial_meta` when missing), or an
    InputError when another process is updating it; closed on exit."""
    if is_server_url(location):
        from omnibind.search.pgstore import writer

        with writer(str(location), initial_meta) as server:
            yield server
        return
    from omnibind.search.lock import exclusive_writer

    with exclusive_writer(Path(location)):
        store = Store(location, initial_meta)
        try:
            yield store
        finally:
            store.close()


class Store:
    """SQLite connection to an index folder; thread-safe (one lock), every write is one transaction."""

    def __init__(self, folder: str | Path, initial_meta: dict[str, Any] | None = None) -> None:
        """Open the index in `folder`; with `initial_meta`, create it first when it does not exist yet."""
        self.folder = Path(folder)
        self.path = self.folder / DB_FILE
        if not self.path.is_file():
            if initial_meta is None:
                raise InputError(self.folder, "not an omnibind index (no index.sqlite)",
                                 "a folder written by `omnibind index DIR --model M --index IDX`")
            create_database(self.path, initial_meta)
        self._lock = threading.RLock()
        try:
            self._db = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            version = self.meta("schema_version")
        except sqlite3.DatabaseError as err:
            raise InputError(self.path, f"cannot open the index database ({err})", "an omnibind index") from err
        if version == 1:
            self._migrate_v1()
        elif version != SCHEMA_VERSION:
            raise InputError(self.path, f"index schema version {version}",
                             f"version 1 or {SCHEMA_VERSION}; rebuild it with `omnibind index`")

    def _migrate_v1(self) -> None:
        """Fold schema 1's metadata columns into `meta`, in place and in one transaction (ids, the id
        counter, paths, hashes and vectors are kept); another process may have migrated it meanwhile."""
        try:
            with self.transaction(bump=False) as db:
                if self.meta("schema_version") != 1:
                    return
                counter = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'items'").fetchone()
                for statement in MIGRATE_V1:
                    db.execute(statement)
                db.execute("DELETE FROM sqlite_sequence WHERE name = 'items'")
                if counter is not None:  # ids are never reused, not even those of items deleted before
                    db.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('items', ?)", counter)
                self._set_meta("schema_version", SCHEMA_VERSION)
        except sqlite3.OperationalError as err:  # a read-only folder, or a database locked past the timeout
            raise InputError(self.path, f"index schema version 1 could not be upgraded to {SCHEMA_VERSION} ({err})",
                             "write access to the index folder, once, to upgrade it in place") from err

    def close(self) -> None:
        """Close the connection (the WAL is checkpointed by SQLite)."""
        with self._lock:
            self._db.close()

    @property
    def name(self) -> str:
        """How messages name the index: its folder."""
        return str(self.folder)

    def own_vectors(self, embed_dim: int) -> None:
        """None: a vector backend kind builds this index's vectors from `snapshot` and caches them in the folder."""
        return None

    # ------------------------------------------------------------------------------------------ meta

    def meta(self, key: str) -> Any:
        """A JSON value from the meta table, None when absent."""
        with self._lock:
            try:
                row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
            except sqlite3.OperationalError:  # no meta table: not an index
                return None
        return None if row is None else json.loads(row[0])

    def _set_meta(self, key: str, value: Any) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, json.dumps(value)))

    def set_meta(self, values: dict[str, Any]) -> None:
        """Write several meta values in one transaction."""
        with self.transaction(bump=False):
            for key, value in values.items():
                self._set_meta(key, value)

    def generation(self) -> int:
        """Counter bumped by every transaction that changes items; the faiss cache records the one it saw."""
        return int(self.meta("generation") or 0)

    @contextmanager
    def transaction(self, bump: bool = True) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE … COMMIT (rolled back on error); `bump` increments the generation inside it."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                if bump:
                    self._db.execute(
                        "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'"
                    )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    # ----------------------------------------------------------------------------------------- items

    def known_files(self, root: str) -> dict[str, KnownFile]:
        """Indexed files under `root` (a resolved folder path), keyed by path."""
        prefix = root.rstrip("/") + "/"
        with self._lock:
            rows = self._db.execute(
                "SELECT path, id, size, mtime_ns, sha256 FROM items WHERE substr(path, 1, ?) = ?",
                (len(prefix), prefix),
            ).fetchall()
        return {path: KnownFile(id_, size, mtime, sha) for path, id_, size, mtime, sha in rows}

    def known_failures(self, root: str) -> dict[str, tuple[int, int, str]]:
        """Files under `root` that failed to decode, keyed by path, with the (size, mtime_ns) that failed and
        the reason."""
        prefix = root.rstrip("/") + "/"
        with self._lock:
            rows = self._db.execute(
                "SELECT path, size, mtime_ns, error FROM failures WHERE substr(path, 1, ?) = ?", (len(prefix), prefix)
            ).fetchall()
        return {path: (size, mtime, error) for path, size, mtime, error in rows}

    @staticmethod
    def add_items(db: sqlite3.Connection, infos: Sequence[MediaInfo], vectors: np.ndarray) -> None:
        """Insert items with their vectors (inside a transaction); a path already present is replaced."""
        now = time.time()
        rows = [(i.path, i.modality, i.size, i.mtime_ns, i.sha256, _meta_json(i), now, _blob(vector))
                for i, vector in zip(infos, vectors, strict=True)]
        paths, marks = [i.path for i in infos], ",".join("?" * len(infos))
        db.execute(f"DELETE FROM items WHERE path IN ({marks})", paths)
        db.executemany(
            f"INSERT INTO items ({', '.join(ITEM_COLUMNS[1:])}, vector) VALUES ({', '.join('?' * 8)})", rows
        )
        db.execute(f"DELETE FROM failures WHERE path IN ({marks})", paths)

    @staticmethod
    def touch_items(db: sqlite3.Connection, infos: Iterable[MediaInfo]) -> None:
        """Record a new size/mtime for files whose content hash did not change (no new embedding)."""
        db.executemany("UPDATE items SET size = ?, mtime_ns = ? WHERE path = ?",
                       [(i.size, i.mtime_ns, i.path) for i in infos])

    @staticmethod
    def add_failures(db: sqlite3.Connection, failures: Iterable[tuple[str, int, int, str]]) -> None:
        """Remember files that cannot be decoded, so unchanged ones are not retried every run; an item
        whose file became undecodable is dropped (its vector no longer describes the file)."""
        rows = list(failures)
        db.executemany("DELETE FROM items WHERE path = ?", [(row[0],) for row in rows])
        db.executemany("INSERT OR REPLACE INTO failures (path, size, mtime_ns, error) VALUES (?, ?, ?, ?)", rows)

    @staticmethod
    def remove_paths(db: sqlite3.Connection, paths: Sequence[str]) -> None:
        """Drop items and failure records of deleted files."""
        for start in range(0, len(paths), 500):
            chunk = list(paths[start : start + 500])
            marks = ",".join("?" * len(chunk))
            db.execute(f"DELETE FROM items WHERE path IN ({marks})", chunk)
            db.execute(f"DELETE FROM failures WHERE path IN ({marks})", chunk)

    def item(self, item_id: int) -> ItemRecord | None:
        """One item's metadata by id, None when there is no such item."""
        if not 0 < item_id <= MAX_ITEM_ID:
            return None
        return self.items([item_id]).get(item_id)

    def items(self, ids: Sequence[int]) -> dict[int, ItemRecord]:
        """Metadata of several items by id; missing ids are left out."""
        ids = [int(i) for i in ids if 0 < int(i) <= MAX_ITEM_ID]
        if not ids:
            return {}
        with self._lock:
            rows = self._db.execute(
                f"SELECT {', '.join(ITEM_COLUMNS)} FROM items WHERE id IN ({','.join('?' * len(ids))})", ids
            ).fetchall()
        return {row[0]: _record(row) for row in rows}

    def vector(self, item_id: int, dim: int) -> np.ndarray | None:
        """One item's stored (dim,) vector, None when there is no such item (for "more like this")."""
        if not 0 < item_id <= MAX_ITEM_ID:
            return None
        with self._lock:
            row = self._db.execute("SELECT vector FROM items WHERE id = ?", (item_id,)).fetchone()
        return None if row is None else _vector(row[0], dim, item_id).copy()

    def counts(self) -> dict[str, int]:
        """Number of items per modality."""
        with self._lock:
            rows = self._db.execute("SELECT modality, COUNT(*) FROM items GROUP BY modality").fetchall()
        return dict(rows)

    def failures(self) -> list[tuple[str, str]]:
        """(path, error) of every file that could not be decoded."""
        with self._lock:
            return self._db.execute("SELECT path, error FROM failures ORDER BY path").fetchall()

    def snapshot(self, dim: int) -> tuple[int, dict[str, tuple[np.ndarray, np.ndarray]]]:
        """The generation and every modality's (ids int64 (N,), vectors float32 (N, dim)), read in one
        transaction so that they agree with each other."""
        parts: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        with self._lock:
            self._db.execute("BEGIN")
            try:
                generation = int(json.loads(self._db.execute(
                    "SELECT value FROM meta WHERE key = 'generation'").fetchone()[0]))
                counts = self._db.execute("SELECT modality, COUNT(*) FROM items GROUP BY modality").fetchall()
                for modality, count in counts:
                    ids = np.empty(count, dtype=np.int64)
                    matrix = np.empty((count, dim), dtype=np.float32)
                    rows = self._db.execute("SELECT id, vector FROM items WHERE modality = ? ORDER BY id", (modality,))
                    for row, (item_id, blob) in enumerate(rows):
                        ids[row] = item_id
                        matrix[row] = _vector(blob, dim, item_id)
                    parts[modality] = (ids, matrix)
            finally:
                self._db.execute("COMMIT")
        return generation, parts

    def integrity_check(self) -> str:
        """SQLite's own consistency check ("ok" when the database is sound)."""
        with self._lock:
            return self._db.execute("PRAGMA integrity_check").fetchone()[0]


def create_database(path: Path, meta: dict[str, Any]) -> None:
    """Create the schema and first meta values in a temporary file, fsync it and rename it into place, so
    the database file either does not exist or is complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.creating")
    temp.unlink(missing_ok=True)
    db = sqlite3.connect(temp, isolation_level=None)
    try:
        db.executescript(SCHEMA)
        values = {"schema_version": SCHEMA_VERSION, "generation": 0, **meta}
        db.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", [(k, json.dumps(v)) for k, v in values.items()])
    finally:
        db.close()
    fsync_path(temp)
    os.replace(temp, path)
    fsync_path(path.parent)


def plain_meta(meta: Any, source: str, modality: str) -> dict[str, Any]:
    """A modality's metadata as the index stores it: a JSON object (numpy scalars become plain numbers);
    anything else is refused, naming the file."""
    try:
        if not isinstance(meta, dict):
            raise TypeError(f"a {type(meta).__name__}, not a dict")
        plain: dict[str, Any] = json.loads(json.dumps(meta, default=lambda value: value.item()))
    except (TypeError, ValueError, AttributeError) as err:
        raise InputError(source, f"{modality} metadata {meta!r} cannot be stored ({err})",
                         "a dict of plain values from the modality's describe()") from err
    return plain


def _meta_json(info: MediaInfo) -> str:
    return json.dumps(info.meta, sort_keys=True)


def _record(row: tuple[Any, ...]) -> ItemRecord:
    values = dict(zip(ITEM_COLUMNS, row, strict=True))
    values["meta"] = json.loads(values["meta"] or "{}")
    return ItemRecord(**values)


def _blob(vector: np.ndarray) -> bytes:
    return np.ascontiguousarray(vector, dtype="<f4").tobytes()


def _vector(blob: bytes, dim: int, item_id: int) -> np.ndarray:
    if len(blob) != 4 * dim:
        raise InputError(f"item {item_id}", f"stored vector has {len(blob) // 4} values", f"{dim} (the index's dim)")
    return np.frombuffer(blob, dtype="<f4")
