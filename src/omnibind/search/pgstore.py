"""The server store: an index's items, metadata, failures and vectors in one PostgreSQL database (pgvector).

It implements the same store protocol as the SQLite folder (omnibind.search.store.IndexStore), so the indexer,
the search index and the service run unchanged on it: `omnibind index DIR --store postgresql://...` writes it,
and any number of `omnibind serve --store postgresql://...` processes, on any machines, search it.

- Every change is one transaction that also bumps the generation counter (as in SQLite), so an indexer killed
  at any moment leaves the previous or the next consistent state; PostgreSQL rolls back the open transaction
  and drops the session's locks when the client's connection dies.
- One writer at a time: the indexer holds a session-level advisory lock, which a second indexer is refused
  and which a killed indexer's closed connection releases. The writer does everything on that one connection.
- A reader (a serve process) reads through up to READERS connections: its own, and a pool (psycopg-pool) for
  requests that arrive while that one is busy, so that concurrent searches run side by side in the database.
- Vectors are searched in the database (omnibind.search.pgvectors): one HNSW index per modality (a partial
  index on `modality = ...`), so readers see new items as soon as they are committed, without rebuilding
  anything. A modality's index is built in bulk at the end of the run that first adds it (about six times
  faster than maintaining it insert by insert), then PostgreSQL maintains it on every insert; until it exists,
  that modality is searched exactly (a scan), which is also what a run killed before the end leaves, until the
  next run builds it.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import numpy as np

from omnibind.errors import InputError
from omnibind.search.store import MAX_ITEM_ID, IndexStore, ItemRecord, KnownFile, MediaInfo, is_server_url

if TYPE_CHECKING:
    import psycopg
    from psycopg import sql
    from psycopg_pool import ConnectionPool

    from omnibind.search.pgvectors import PgVectors

__all__ = ["PgStore", "holds_index", "is_server_url", "nearest_statement", "prepare_session", "redact", "writer"]

SCHEMA_VERSION = 1
PREFIX = "omnibind_"
META, ITEMS, FAILURES = f"{PREFIX}meta", f"{PREFIX}items", f"{PREFIX}failures"
ITEM_COLUMNS = ("id", "path", "modality", "size", "mtime_ns", "sha256", "meta", "indexed_at")
WRITER_LOCK = 0x6F6D6E6962696E64 & (2**63 - 1)  # "omnibind": the advisory lock key of the one writer
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 64
HNSW_EF_SEARCH = 100
MAX_EF_SEARCH = 1000  # pgvector's upper bound for hnsw.ef_search
CONNECT_TIMEOUT = 10
# Every connection of a store, its own or pooled: autocommit (a transaction is always explicit), bounded waits.
CONNECTION_OPTIONS: dict[str, Any] = {"autocommit": True, "connect_timeout": CONNECT_TIMEOUT,
                                      "application_name": "omnibind"}
READERS = 4  # connections a reader store opens at most: requests beyond that wait for one to be free
URL_FORM = "postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE"

T = TypeVar("T")


def redact(url: str) -> str:
    """The URL as messages show it: without its password (in the user part or a `password=` parameter)."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            user, host = netloc.rsplit("@", 1)
            netloc = f"{user.split(':', 1)[0]}@{host}"
        query = urlencode([(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "password"],
                          safe="/")
        return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
    except ValueError:
        return url.split("://", 1)[0] + "://…"


def _secret(url: str) -> str | None:
    """The URL's password, to be scrubbed from any server message before it is shown."""
    try:
        parts = urlsplit(url)
        return parts.password or dict(parse_qsl(parts.query)).get("password") or None
    except ValueError:
        return None


def _psycopg() -> Any:
    """psycopg, once pgvector's adapter and psycopg-pool are found too, or an InputError saying how to install
    them (checked here so that a missing one is said at once, not at the first search)."""
    try:
        import pgvector.psycopg  # noqa: F401
        import psycopg
        import psycopg_pool  # noqa: F401
    except ImportError as err:
        raise InputError("--store", f"PostgreSQL support is not installed ({err.name} is missing)",
                         "pip install 'omnibind[postgres]' (psycopg 3, psycopg-pool and pgvector)") from err
    return psycopg


def prepare_session(conn: psycopg.Connection[Any], ef_search: int = HNSW_EF_SEARCH) -> bool:
    """Teach a connection pgvector's `vector` type (numpy arrays in and out) and set its search settings, once the
    extension exists (so that a search is one round trip); whether pgvector continues an HNSW scan past rows a
    query cannot see (>= 0.8)."""
    import pgvector.psycopg

    row = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
    if row is None:
        return False
    pgvector.psycopg.register_vector(conn)
    conn.execute(f"SET hnsw.ef_search = {int(ef_search)}")
    iterative = tuple(int(p) for p in re.findall(r"\d+", row[0])[:2]) >= (0, 8)
    if iterative:  # rows replaced or deleted since they were indexed do not shorten an answer
        conn.execute("SET hnsw.iterative_scan = strict_order")
    return iterative


def nearest_statement(modality: str) -> sql.Composed:
    """The k-nearest query of one modality (parameters: the query vector twice, k), as every search sends it; the
    modality is a literal, not a parameter, so that the planner can match the partial HNSW index to it."""
    from psycopg import sql

    return sql.SQL("SELECT id, (vector <#> %s) * -1 FROM {} WHERE modality = {} ORDER BY vector <#> %s "
                   "LIMIT %s").format(sql.Identifier(ITEMS), sql.Literal(modality))


class PgStore:
    """An index in a PostgreSQL database; thread-safe, every write one transaction. The writer holds one connection
    behind a lock; a reader's reads also use a pool of further connections while its own one is busy."""

    folder = None  # no index folder: caches and the writer lock live in the database

    def __init__(self, url: str, initial_meta: dict[str, Any] | None = None, require_index: bool = True,
                 readers: int = READERS) -> None:
        """Open the index in the database at `url`; with `initial_meta`, take the writer lock and create the index
        when it does not exist yet (see `writer`); `require_index=False` only connects (see `holds_index`). A
        reader reads through at most `readers` connections at once."""
        self.url = url
        self.name = redact(url)
        self._lock = threading.RLock()
        self._psycopg = _psycopg()
        self._writer = initial_meta is not None
        self._iterative = False  # pgvector >= 0.8 continues an HNSW scan past rows a query cannot see
        self._pool: ConnectionPool[Any] | None = None
        self._conn = self._connect()  # first and alone: a server that cannot be reached is said at once
        if initial_meta is not None:
            self._hold_writer_lock()
            self._create(initial_meta)
        if require_index:
            self._check_schema()
        if not self._writer and readers > 1:
            self._pool = self._open_pool(readers - 1)

    # ---------------------------------------------------------------------------------------- connection

    def _connect(self) -> psycopg.Connection[Any]:
        """A new autocommit connection with pgvector's types registered, or one clear InputError."""
        pg = self._psycopg
        try:
            conn: psycopg.Connection[Any] = pg.connect(self.url, **CONNECTION_OPTIONS)
        except (pg.Error, ValueError) as err:
            raise self._error("cannot connect", err, f"a reachable PostgreSQL server ({URL_FORM})") from err
        try:
            self._register(conn)
        except pg.Error as err:
            conn.close()
            raise self._error("cannot read the database", err, "a PostgreSQL database with pgvector") from err
        return conn

    def _register(self, conn: psycopg.Connection[Any]) -> None:
        """Teach the connection pgvector's `vector` type and the search settings (see `prepare_session`)."""
        self._iterative = prepare_session(conn) or self._iterative

    def _open_pool(self, size: int) -> ConnectionPool[Any]:
        """The pool of a reader's further connections, opened on demand (none until two reads overlap), each set up
        like the first; a request waits at most CONNECT_TIMEOUT for one, then for the first connection."""
        from psycopg_pool import ConnectionPool

        return ConnectionPool(self.url, min_size=0, max_size=size, open=True, configure=self._register,
                              name="omnibind", timeout=CONNECT_TIMEOUT, num_workers=1,
                              kwargs=dict(CONNECTION_OPTIONS))

    def _error(self, what: str, err: BaseException, expected: str) -> InputError:
        """An InputError naming the database (never its password) with the server's first line of explanation."""
        detail = (str(err).strip().splitlines() or [type(err).__name__])[0]
        secret = _secret(self.url)
        if secret:
            detail = detail.replace(secret, "***")
        return InputError(self.name, f"{what} ({detail})", expected)

    def _run(self, work: Callable[[psycopg.Connection[Any]], T]) -> T:
        """Run a read: on the store's own connection, or on a reader's pooled one while that is busy."""
        if self._pool is None:
            return self._run_own(work)
        if not self._lock.acquire(blocking=False):
            return self._run_pooled(self._pool, work)
        try:
            return self._run_own(work)  # re-enters the lock just taken
        finally:
            self._lock.release()

    def _run_pooled(self, pool: ConnectionPool[Any], work: Callable[[psycopg.Connection[Any]], T]) -> T:
        """Run a read on a pooled connection; one found broken (a database restart), or none free in time, sends
        the read to the store's own connection (reopened once there), after the pool's idle ones are checked."""
        pg = self._psycopg
        try:
            with pool.connection() as conn:
                try:
                    return work(conn)
                except pg.Error as err:
                    if not (conn.closed or conn.broken):
                        raise self._error("query failed", err, "a reachable PostgreSQL server") from err
        except pg.Error:  # PoolTimeout: none free in time, or none could be opened
            pass
        pool.check()  # drops the idle connections that the same restart broke (the pool opens new ones)
        return self._run_own(work)

    def _run_own(self, work: Callable[[psycopg.Connection[Any]], T]) -> T:
        """Run a read on the store's own connection, under the lock; a reader's connection lost since (a database
        restart) is reopened once (a writer's is not: its lock went with it)."""
        pg = self._psycopg
        with self._lock:
            try:
                return work(self._conn)
            except pg.Error as err:
                if self._writer or not (self._conn.closed or self._conn.broken):
                    raise self._error("query failed", err, "a reachable PostgreSQL server") from err
            self._conn.close()
            self._conn = self._connect()
            try:
                return work(self._conn)
            except pg.Error as err:
                raise self._error("query failed", err, "a reachable PostgreSQL server") from err

    def close(self) -> None:
        """Close the connections (which also releases the writer lock, when held)."""
        if self._pool is not None:
            self._pool.close()
        with self._lock:
            self._conn.close()

    # ------------------------------------------------------------------------------------------- schema

    def _hold_writer_lock(self) -> None:
        """Take the session's advisory writer lock, or refuse: another process is updating this index."""
        row = self._run(lambda c: c.execute("SELECT pg_try_advisory_lock(%s)", (WRITER_LOCK,)).fetchone())
        if row is None or not row[0]:
            self.close()
            raise InputError(self.name, "another process is updating this index", "that run to finish first")

    def _create(self, meta: dict[str, Any]) -> None:
        """Create the extension, the tables and the first meta values in one transaction (or find them there)."""
        pg = self._psycopg
        if self.exists():
            return
        try:
            dim = int(meta["model"]["embed_dim"])
        except (KeyError, TypeError, ValueError) as err:
            raise InputError("initial_meta", "no model embed_dim", "the model's identity to size the vector column") \
                from err
        try:
            with self._conn.transaction():
                if self._conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone() is None:
                    self._create_extension()
                self._conn.execute(f"CREATE TABLE {META} (key text PRIMARY KEY, value jsonb NOT NULL)")
                self._conn.execute(f"""
                    CREATE TABLE {ITEMS} (
                        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                        path text NOT NULL UNIQUE,
                        modality text NOT NULL,
                        size bigint NOT NULL,
                        mtime_ns bigint NOT NULL,
                        sha256 text NOT NULL,
                        meta jsonb NOT NULL DEFAULT '{{}}',
                        indexed_at double precision NOT NULL,
                        vector vector({dim}) NOT NULL
                    )""")
                self._conn.execute(f"CREATE INDEX {ITEMS}_modality ON {ITEMS} (modality)")
                self._conn.execute(f"CREATE TABLE {FAILURES} (path text PRIMARY KEY, size bigint NOT NULL, "
                                   "mtime_ns bigint NOT NULL, error text NOT NULL)")
                values = {"schema_version": SCHEMA_VERSION, "generation": 0, **meta}
                for key, value in values.items():
                    self._set_meta(self._conn, key, value)
        except pg.Error as err:
            raise self._error("cannot create the index", err, "a database this user may create tables in") from err
        self._register(self._conn)

    def _create_extension(self) -> None:
        """Enable pgvector in this database (a superuser's right), saying what to do when it cannot be."""
        pg = self._psycopg
        try:
            with self._conn.transaction():
                self._conn.execute("CREATE EXTENSION vector")
        except pg.errors.InsufficientPrivilege as err:
            raise self._error("the pgvector extension is not enabled here and this user may not enable it", err,
                              "a superuser to run CREATE EXTENSION vector once in this database") from err
        except (pg.errors.UndefinedFile, pg.errors.FeatureNotSupported) as err:
            raise self._error("the server has no pgvector extension", err,
                              "pgvector installed on the server (`make setup` as root installs it)") from err

    def exists(self) -> bool:
        """Whether this database holds an omnibind index (its meta table)."""
        row = self._run(lambda c: c.execute("SELECT to_regclass(%s) IS NOT NULL", (META,)).fetchone())
        return bool(row and row[0])

    def _check_schema(self) -> None:
        """Refuse a database that holds no omnibind index, or one of another schema version."""
        if not self.exists():
            self.close()
            raise InputError(self.name, f"holds no omnibind index (no {META} table)",
                             "a database written by `omnibind index DIR --model M --store URL`")
        version = self.meta("schema_version")
        if version != SCHEMA_VERSION:
            self.close()
            raise InputError(self.name, f"index schema version {version}",
                             f"version {SCHEMA_VERSION}; rebuild it with `omnibind index`")

    # --------------------------------------------------------------------------------------------- meta

    def meta(self, key: str) -> Any:
        """A JSON value from the meta table, None when absent."""
        row = self._run(lambda c: c.execute(f"SELECT value FROM {META} WHERE key = %s", (key,)).fetchone())
        return None if row is None else row[0]

    def _set_meta(self, db: psycopg.Connection[Any], key: str, value: Any) -> None:
        from psycopg.types.json import Jsonb

        db.execute(f"INSERT INTO {META} (key, value) VALUES (%s, %s) "
                   "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value", (key, Jsonb(value)))

    def set_meta(self, values: dict[str, Any]) -> None:
        """Write several meta values in one transaction."""
        with self.transaction(bump=False) as db:
            for key, value in values.items():
                self._set_meta(db, key, value)

    def generation(self) -> int:
        """Counter bumped by every transaction that changes items: readers notice a newer index by it."""
        return int(self.meta("generation") or 0)

    @contextmanager
    def transaction(self, bump: bool = True) -> Iterator[psycopg.Connection[Any]]:
        """BEGIN … COMMIT (rolled back on error); `bump` increments the generation inside it."""
        pg = self._psycopg
        with self._lock:
            try:
                with self._conn.transaction():
                    yield self._conn
                    if bump:
                        self._conn.execute(f"UPDATE {META} SET value = to_jsonb((value #>> '{{}}')::bigint + 1) "
                                           "WHERE key = 'generation'")
            except pg.Error as err:
                raise self._error("write failed", err, "a reachable PostgreSQL server") from err

    # -------------------------------------------------------------------------------------------- items

    def known_files(self, root: str) -> dict[str, KnownFile]:
        """Indexed files under `root` (a resolved folder path), keyed by path."""
        prefix = root.rstrip("/") + "/"
        rows = self._run(lambda c: c.execute(
            f"SELECT path, id, size, mtime_ns, sha256 FROM {ITEMS} WHERE starts_with(path, %s)", (prefix,)).fetchall())
        return {path: KnownFile(id_, size, mtime, sha) for path, id_, size, mtime, sha in rows}

    def known_failures(self, root: str) -> dict[str, tuple[int, int, str]]:
        """Files under `root` that failed to decode, keyed by path, with the (size, mtime_ns) that failed and why."""
        prefix = root.rstrip("/") + "/"
        rows = self._run(lambda c: c.execute(
            f"SELECT path, size, mtime_ns, error FROM {FAILURES} WHERE starts_with(path, %s)", (prefix,)).fetchall())
        return {path: (size, mtime, error) for path, size, mtime, error in rows}

    def add_items(self, db: psycopg.Connection[Any], infos: Sequence[MediaInfo], vectors: np.ndarray) -> None:
        """Insert items with their vectors (inside a transaction); a path already present is replaced."""
        from psycopg.types.json import Jsonb

        now = time.time()
        paths = [info.path for info in infos]
        rows = [(i.path, i.modality, i.size, i.mtime_ns, i.sha256, Jsonb(i.meta), now,
                 np.ascontiguousarray(vector, dtype=np.float32)) for i, vector in zip(infos, vectors, strict=True)]
        db.execute(f"DELETE FROM {ITEMS} WHERE path = ANY(%s)", (paths,))
        with db.cursor() as cursor:
            cursor.executemany(f"INSERT INTO {ITEMS} ({', '.join(ITEM_COLUMNS[1:])}, vector) "
                               f"VALUES ({', '.join(['%s'] * 8)})", rows)
        db.execute(f"DELETE FROM {FAILURES} WHERE path = ANY(%s)", (paths,))

    def touch_items(self, db: psycopg.Connection[Any], infos: Iterable[MediaInfo]) -> None:
        """Record a new size/mtime for files whose content hash did not change (no new embedding)."""
        rows = [(i.size, i.mtime_ns, i.path) for i in infos]
        if rows:
            with db.cursor() as cursor:
                cursor.executemany(f"UPDATE {ITEMS} SET size = %s, mtime_ns = %s WHERE path = %s", rows)

    def add_failures(self, db: psycopg.Connection[Any], failures: Iterable[tuple[str, int, int, str]]) -> None:
        """Remember files that cannot be decoded; an item whose file became undecodable is dropped."""
        rows = list(failures)
        if not rows:
            return
        db.execute(f"DELETE FROM {ITEMS} WHERE path = ANY(%s)", ([row[0] for row in rows],))
        with db.cursor() as cursor:
            cursor.executemany(f"INSERT INTO {FAILURES} (path, size, mtime_ns, error) VALUES (%s, %s, %s, %s) "
                               "ON CONFLICT (path) DO UPDATE SET size = EXCLUDED.size, "
                               "mtime_ns = EXCLUDED.mtime_ns, error = EXCLUDED.error", rows)

    def remove_paths(self, db: psycopg.Connection[Any], paths: Sequence[str]) -> None:
        """Drop items and failure records of deleted files."""
        db.execute(f"DELETE FROM {ITEMS} WHERE path = ANY(%s)", (list(paths),))
        db.execute(f"DELETE FROM {FAILURES} WHERE path = ANY(%s)", (list(paths),))

    def build_hnsw(self) -> list[str]:
        """Build the HNSW index of every modality that has items and no index yet (the writer, at the end of a
        run), each in one transaction that bumps the generation, so that readers describe it; the modalities built.
        A partial index per modality: a modality's search walks only its own graph."""
        from psycopg import sql

        built = []
        for modality in sorted(set(self.counts()) - self.indexed_modalities()):
            with self.transaction() as db:
                db.execute(sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} USING hnsw (vector vector_ip_ops) "
                                   "WITH (m = {}, ef_construction = {}) WHERE modality = {}").format(
                    sql.Identifier(hnsw_index_name(modality)), sql.Identifier(ITEMS), sql.Literal(HNSW_M),
                    sql.Literal(HNSW_EF_CONSTRUCTION), sql.Literal(modality)))
            built.append(modality)
        return built

    def indexed_modalities(self) -> set[str]:
        """Modalities whose HNSW index exists (read from the partial indexes' predicates)."""
        rows = self._run(lambda c: c.execute(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename = %s "
            "AND indexdef LIKE %s", (ITEMS, "%USING hnsw%"))
            .fetchall())
        found = {_predicate_modality(row[0]) for row in rows}
        return {modality for modality in found if modality is not None}

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
        rows = self._run(lambda c: c.execute(
            f"SELECT {', '.join(ITEM_COLUMNS)} FROM {ITEMS} WHERE id = ANY(%s)", (ids,)).fetchall())
        return {row[0]: _record(row) for row in rows}

    def vector(self, item_id: int, dim: int) -> np.ndarray | None:
        """One item's stored (dim,) vector, None when there is no such item (for "more like this")."""
        if not 0 < item_id <= MAX_ITEM_ID:
            return None
        row = self._run(lambda c: c.execute(f"SELECT vector FROM {ITEMS} WHERE id = %s", (item_id,)).fetchone())
        return None if row is None else _vector(row[0], dim, item_id)

    def counts(self) -> dict[str, int]:
        """Number of items per modality."""
        rows = self._run(lambda c: c.execute(f"SELECT modality, COUNT(*) FROM {ITEMS} GROUP BY modality").fetchall())
        return {modality: int(count) for modality, count in rows}

    def failures(self) -> list[tuple[str, str]]:
        """(path, error) of every file that could not be decoded."""
        rows = self._run(lambda c: c.execute(f"SELECT path, error FROM {FAILURES} ORDER BY path").fetchall())
        return [(path, error) for path, error in rows]

    def snapshot(self, dim: int) -> tuple[int, dict[str, tuple[np.ndarray, np.ndarray]]]:
        """The generation and every modality's (ids int64 (N,), vectors float32 (N, dim)), read in one
        repeatable-read transaction so that they agree with each other."""
        def read(conn: psycopg.Connection[Any]) -> tuple[int, dict[str, tuple[np.ndarray, np.ndarray]]]:
            parts: dict[str, tuple[np.ndarray, np.ndarray]] = {}
            with conn.transaction():
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                row = conn.execute(f"SELECT value FROM {META} WHERE key = 'generation'").fetchone()
                generation = int(row[0]) if row else 0
                rows = conn.execute(f"SELECT modality, id, vector FROM {ITEMS} ORDER BY modality, id").fetchall()
            grouped: dict[str, list[tuple[int, Any]]] = {}
            for modality, item_id, vector in rows:
                grouped.setdefault(modality, []).append((item_id, vector))
            for modality, items in grouped.items():
                ids = np.array([item_id for item_id, _ in items], dtype=np.int64)
                matrix = np.stack([_vector(v, dim, i) for i, v in items]).astype(np.float32)
                parts[modality] = (ids, matrix)
            return generation, parts

        return self._run(read)

    def integrity_check(self) -> str:
        """"ok" when the schema is complete and no index of the items is invalid (the column's type fixes every
        vector's size; unique paths and transactional writes are PostgreSQL's to keep)."""
        tables = self._run(lambda c: c.execute("SELECT to_regclass(%s), to_regclass(%s), to_regclass(%s)",
                                               (META, ITEMS, FAILURES)).fetchone())
        if tables is None or None in tables:
            return f"missing tables of {META}, {ITEMS}, {FAILURES}"
        invalid = self._run(lambda c: c.execute(
            "SELECT string_agg(c.relname, ', ') FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE i.indrelid = %s::regclass AND NOT i.indisvalid", (ITEMS,)).fetchone())
        return "ok" if invalid is None or invalid[0] is None else f"invalid indexes: {invalid[0]}"

    # ------------------------------------------------------------------------------------------ vectors

    def own_vectors(self, embed_dim: int) -> PgVectors:
        """The live vector search of this database (HNSW in PostgreSQL), as of the current generation; the writer
        first builds the HNSW index of any modality still without one (see `build_hnsw`)."""
        from omnibind.search.pgvectors import PgVectors

        if self._writer:
            self.build_hnsw()
        return PgVectors(self, self.generation(), embed_dim, self.counts(), self.indexed_modalities())

    def nearest(self, query: np.ndarray, k: int, modality: str, ef_search: int) -> list[tuple[int, float]]:
        """(item id, inner product) of one modality's k nearest items, best first, through its HNSW index."""
        vector = np.ascontiguousarray(query, dtype=np.float32).reshape(-1)
        statement = nearest_statement(modality)

        def search(conn: psycopg.Connection[Any]) -> list[tuple[int, float]]:
            depth = min(max(ef_search, k), MAX_EF_SEARCH)
            if depth == HNSW_EF_SEARCH:  # the session's setting
                rows = conn.execute(statement, (vector, vector, k)).fetchall()
            else:
                with conn.transaction():
                    conn.execute("SELECT set_config('hnsw.ef_search', %s, true)", (str(depth),))
                    rows = conn.execute(statement, (vector, vector, k)).fetchall()
            return [(int(item_id), float(score)) for item_id, score in rows]

        return self._run(search)


def hnsw_index_name(modality: str) -> str:
    """The HNSW index's name for one modality: readable for plain names, hashed for any other."""
    if re.fullmatch(r"[a-z][a-z0-9_]{0,30}", modality):
        return f"{ITEMS}_hnsw_{modality}"
    return f"{ITEMS}_hnsw_{hashlib.sha256(modality.encode()).hexdigest()[:16]}"


def _predicate_modality(indexdef: str) -> str | None:
    """The modality of a partial index's `WHERE (modality = 'x'::text)`, None for another index."""
    found = re.search(r"WHERE \(modality = '((?:[^']|'')*)'::text\)$", indexdef)
    return None if found is None else found.group(1).replace("''", "'")


def holds_index(url: str) -> bool:
    """Whether the database at `url` holds an omnibind index yet (an unreachable one is an InputError)."""
    probe = PgStore(url, require_index=False, readers=1)
    try:
        return probe.exists()
    finally:
        probe.close()


@contextmanager
def writer(url: str, initial_meta: dict[str, Any]) -> Iterator[IndexStore]:
    """The index in this database opened for writing (created when missing) under its one-writer lock, or an
    InputError when another process is updating it."""
    store = PgStore(url, initial_meta)
    try:
        yield store
    finally:
        store.close()


def _record(row: tuple[Any, ...]) -> ItemRecord:
    values = dict(zip(ITEM_COLUMNS, row, strict=True))
    values["meta"] = dict(sorted((values["meta"] or {}).items()))  # key order as SQLite's sorted JSON
    return ItemRecord(**values)


def _vector(value: Any, dim: int, item_id: int) -> np.ndarray:
    vector = np.asarray(value.to_numpy() if hasattr(value, "to_numpy") else value, dtype=np.float32)
    if vector.shape != (dim,):
        raise InputError(f"item {item_id}", f"stored vector has {vector.size} values", f"{dim} (the index's dim)")
    return vector.copy()
