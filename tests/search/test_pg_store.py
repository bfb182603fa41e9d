"""The PostgreSQL (pgvector) server store: `omnibind index DIR --store postgresql://...` keeps items, metadata,
failures and vectors in the database with one HNSW index per modality; its search equals SQLite + FAISS exact
search on the same tiny index (through `omnibind search --store` too); runs are incremental; a second writer is
refused; readers see new items without reopening and run concurrent requests on connections of their own; errors
name the database, never its password. Each test gets a new database in a throwaway cluster."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from search_media import picture, write_media
from typer.testing import CliRunner

import omnibind
from helpers import tiny_model
from omnibind.cli import app
from omnibind.errors import InputError
from omnibind.search import Searcher, SearchIndex, update_index
from omnibind.search.store import open_writer

runner = CliRunner()


def run(index: str | Path, media: Path, checkpoint: Path, **kwargs):
    return update_index(index, media, omnibind.load(checkpoint), checkpoint, batch_size=4, **kwargs)


def records(index: SearchIndex) -> dict[str, dict]:
    """Every item's JSON by path, without the fields that differ between two stores (id, time indexed)."""
    found = index.store.items(list(range(1, 1000)))
    return {r.path: {k: v for k, v in r.to_dict().items() if k not in ("id", "indexed_at")} for r in found.values()}


def by_path(index: SearchIndex) -> dict[str, tuple[str, bytes]]:
    """Every stored vector, from one consistent snapshot, keyed by its item's path."""
    _, parts = index.store.snapshot(32)
    paths = {r.id: r.path for r in index.store.items(list(range(1, 1000))).values()}
    return {paths[int(i)]: (modality, vector.tobytes())
            for modality, (ids, matrix) in parts.items() for i, vector in zip(ids, matrix, strict=True)}


def unit(vector: np.ndarray) -> np.ndarray:
    return (vector / np.linalg.norm(vector)).astype(np.float32)


def test_search_equals_sqlite_faiss_exact_search(pg_url: str, media_dir: Path, tmp_path: Path,
                                                 search_checkpoint: Path) -> None:
    (media_dir / "broken.png").write_bytes(b"not a png")
    pg_report = run(pg_url, media_dir, search_checkpoint)
    lite_report = run(tmp_path / "index", media_dir, search_checkpoint)
    assert pg_report.totals == lite_report.totals == {"image": 6, "audio": 3}
    assert [p for p, _ in pg_report.failed] == [p for p, _ in lite_report.failed] == [str(media_dir / "broken.png")]
    assert {m: i.kind for m, i in pg_report.search.items()} == {"audio": "hnsw", "image": "hnsw"}
    assert {m: i.kind for m, i in lite_report.search.items()} == {"audio": "exact", "image": "exact"}

    server, lite = SearchIndex(pg_url), SearchIndex(tmp_path / "index")
    try:
        assert records(server) == records(lite)
        assert server.store.failures() == lite.store.failures()
        _, parts = lite.store.snapshot(32)
        queries = [vector for _, matrix in parts.values() for vector in matrix]
        model = omnibind.load(search_checkpoint)
        queries += [model.encode("text", text).detach().numpy()[0] for text in ("a red circle", "a low tone")]
        queries += [unit(v) for v in np.random.default_rng(0).standard_normal((5, 32))]
        compared = 0
        for query in queries:
            for k, only in ((3, None), (9, None), (4, ["image"]), (2, ["audio"]), (5, ["image", "audio"])):
                got = [(hit.item.path, hit.score) for hit in server.search(query, k, only)]
                want = [(hit.item.path, hit.score) for hit in lite.search(query, k, only)]
                assert [p for p, _ in got] == [p for p, _ in want]
                np.testing.assert_allclose([s for _, s in got], [s for _, s in want], atol=1e-5)
                compared += len(got)
        assert compared == len(queries) * (3 + 9 + 4 + 2 + 5)
        assert by_path(server) == by_path(lite)  # the stored vectors are equal too
        stats = server.stats()
        assert stats["items"] == 9 and stats["modalities"] == {"image": 6, "audio": 3}
        assert stats["search"]["image"] == {"kind": "hnsw", "count": 6, "m": 16, "ef_construction": 64,
                                            "ef_search": 100}
        hits = Searcher(server, model).search("text", "a red circle", 3)
        assert [h.item.path for h in hits] == [h.item.path for h in Searcher(lite, model).search("text",
                                                                                                  "a red circle", 3)]
    finally:
        server.close()
        lite.close()


def test_hnsw_indexes_live_in_the_database(pg_url: str, media_dir: Path, search_checkpoint: Path) -> None:
    import psycopg

    run(pg_url, media_dir, search_checkpoint)
    with psycopg.connect(pg_url) as conn:
        indexes = dict(conn.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'omnibind_items' "
                                    "AND indexdef LIKE '%hnsw%'").fetchall())
        assert sorted(indexes) == ["omnibind_items_hnsw_audio", "omnibind_items_hnsw_image"]
        assert "vector_ip_ops" in indexes["omnibind_items_hnsw_image"]
        assert "WHERE (modality = 'image'::text)" in indexes["omnibind_items_hnsw_image"]
        conn.execute("SET enable_seqscan = off")  # a tiny table is cheaper to scan: show that the index serves
        query = "[" + ",".join(["0.1"] * 32) + "]"
        plan = "\n".join(row[0] for row in conn.execute(
            "EXPLAIN SELECT id FROM omnibind_items WHERE modality = 'image' ORDER BY vector <#> %s::vector LIMIT 3",
            (query,)).fetchall())
    assert "Index Scan using omnibind_items_hnsw_image" in plan


def test_runs_are_incremental(pg_url: str, media_dir: Path, search_checkpoint: Path, spiece_model: Path) -> None:
    first = run(pg_url, media_dir, search_checkpoint)
    assert first.added == 9
    again = run(pg_url, media_dir, search_checkpoint)
    assert (again.embedded, again.unchanged) == (0, 9)
    opened = SearchIndex(pg_url)
    before = {r.path: r.id for r in opened.store.items(range(1, 100)).values()}
    (media_dir / "picture000.png").unlink()
    picture(9).save(media_dir / "picture001.jpg")  # new content
    (media_dir / "tone000.wav").touch()  # same content, new mtime
    write_media(media_dir, images=2, sounds=0, start=30)
    report = run(pg_url, media_dir, search_checkpoint)
    assert (report.added, report.changed, report.restamped, report.removed) == (2, 1, 1, 1)
    after = {r.path: r.id for r in opened.store.items(range(1, 100)).values()}
    assert len(after) == 10 and str(media_dir / "picture000.png") not in after
    changed = str(media_dir / "picture001.jpg")
    assert after[changed] != before[changed]  # a new item for new content
    kept = set(before) & set(after) - {changed}
    assert all(before[path] == after[path] for path in kept) and len(kept) == 7
    opened.close()
    other = omnibind.save(tiny_model(spiece_model, seed=1), media_dir.parent / "other")
    with pytest.raises(InputError, match="was built with model"):
        run(pg_url, media_dir, other)


def test_a_second_writer_is_refused_while_readers_search(pg_url: str, media_dir: Path,
                                                         search_checkpoint: Path) -> None:
    run(pg_url, media_dir, search_checkpoint)
    reader = SearchIndex(pg_url)
    with open_writer(pg_url, {"model": reader.model.to_dict()}):
        with pytest.raises(InputError, match="another process is updating this index"):
            run(pg_url, media_dir, search_checkpoint)
        assert len(reader.search(unit(np.ones(32)), k=20)) == 9
    assert run(pg_url, media_dir, search_checkpoint).unchanged == 9  # released with the writer's connection
    reader.close()


def test_readers_see_new_items_without_reopening(pg_url: str, media_dir: Path, search_checkpoint: Path) -> None:
    run(pg_url, media_dir, search_checkpoint)
    reader = SearchIndex(pg_url)
    model = omnibind.load(search_checkpoint)
    new = write_media(media_dir, images=2, sounds=1, start=40)
    run(pg_url, media_dir, search_checkpoint)
    for path in new:
        modality = "image" if path.suffix in (".png", ".jpg") else "audio"
        hit = reader.search(model.encode(modality, str(path)).detach().numpy()[0], k=1, modalities=[modality])[0]
        assert hit.item.path == str(path.resolve()) and hit.score == pytest.approx(1.0, abs=1e-5)
    reader.refresh(force=True)
    assert reader.stats()["modalities"] == {"image": 8, "audio": 4}
    reader.close()


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def one_line_error(result) -> str:
    """The command's error: exit status 2, one line, no traceback."""
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.output, result.output
    return lines[0]


def test_errors_name_the_database_never_its_password(media_dir: Path, search_checkpoint: Path) -> None:
    pytest.importorskip("psycopg", reason="psycopg is not installed (pip install 'omnibind[postgres]')")
    for url in ("postgresql://alice:s3cret-pw@127.0.0.1:1/db", "postgresql://alice@127.0.0.1:1/db?password=s3cret-pw"):
        output = one_line_error(invoke("index", media_dir, "-m", search_checkpoint, "--store", url))
        assert "s3cret-pw" not in output
        assert output.startswith("error: postgresql://alice@127.0.0.1:1/db: cannot connect (")
        assert "expected a reachable PostgreSQL server" in output
    output = one_line_error(invoke("serve", "--store", "mysql://bob:s3cret-pw@host/db"))
    assert "s3cret-pw" not in output and "--store: a 'mysql' location" in output
    output = one_line_error(invoke("index", media_dir, "-m", search_checkpoint, "--index", "x", "--store",
                                   "postgresql://h/db"))
    assert "both an index folder and --store are given" in output
    assert "no index is given" in one_line_error(invoke("serve"))


def test_a_database_without_an_index_is_named(pg_url: str, pg_cluster) -> None:
    output = one_line_error(invoke("serve", "--store", pg_url))
    assert "holds no omnibind index (no omnibind_meta table)" in output and pg_url in output
    missing = pg_cluster.url("no_such_database", password="s3cret-pw")
    output = one_line_error(invoke("serve", "--store", missing))
    assert 'database "no_such_database" does not exist' in output and "s3cret-pw" not in output


def test_cli_indexes_into_postgres(pg_url: str, media_dir: Path, search_checkpoint: Path) -> None:
    result = invoke("index", media_dir, "-m", search_checkpoint, "--store", pg_url, "--device", "cpu")
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert "9 new" in output and f"{pg_url} holds 3 audio, 6 image" in output
    assert "pgvector HNSW in PostgreSQL, m=16, ef_construction=64, ef_search=100) over 6 vectors" in output


def test_a_reader_reconnects_and_a_writer_stops_when_the_connection_drops(pg_url: str, media_dir: Path,
                                                                          search_checkpoint: Path) -> None:
    import psycopg

    def drop_connections() -> int:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            return len(conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = "
                                    "'omnibind' AND pid <> pg_backend_pid()").fetchall())

    run(pg_url, media_dir, search_checkpoint)
    reader = SearchIndex(pg_url)
    assert drop_connections() == 1  # as a database restart would
    assert len(reader.search(unit(np.ones(32)), k=20)) == 9  # reopened once, transparently
    with open_writer(pg_url, {"model": reader.model.to_dict()}) as writer:
        assert drop_connections() == 2
        with pytest.raises(InputError, match=r"query failed \(.*terminat"):  # its lock went with it: no reconnect
            writer.counts()
    assert reader.stats()["items"] == 9
    reader.close()


def test_a_reader_runs_concurrent_requests_on_several_connections(pg_url: str, media_dir: Path,
                                                                  search_checkpoint: Path) -> None:
    import psycopg

    from omnibind.search.pgstore import READERS

    run(pg_url, media_dir, search_checkpoint)
    reader = SearchIndex(pg_url)
    query = unit(np.ones(32))
    want = [(hit.item.path, hit.score) for hit in reader.search(query, k=9)]
    answers: list[object] = []
    requests = [lambda: [(hit.item.path, hit.score) for hit in reader.search(query, k=9)],
                lambda: reader.item(1).path]  # searches and item lookups alike
    workers = [threading.Thread(target=lambda i=i: answers.append(requests[i % 2]()), daemon=True)
               for i in range(READERS)]
    with psycopg.connect(pg_url, autocommit=True) as blocker, psycopg.connect(pg_url, autocommit=True) as observer:
        with blocker.transaction():  # every read of the items waits on this lock until the commit
            blocker.execute("LOCK TABLE omnibind_items IN ACCESS EXCLUSIVE MODE")
            for worker in workers:
                worker.start()
            waiting = waiting_backends(observer, READERS)
        for worker in workers:
            worker.join(timeout=60)
        assert waiting == READERS  # the reader's requests waited side by side, each on a connection of its own
        assert answers.count(want) == READERS // 2 + READERS % 2 and len(answers) == READERS
        first = reader.item(1)
        assert first is not None and answers.count(first.path) == READERS // 2

        # A pooled connection that the server dropped sends its read to the store's own connection, reopened once.
        observer.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = "
                         "'omnibind'")
        assert reader.store._pool is not None and reader.store._pool.get_stats()["pool_available"] >= 1
        assert reader.store._run_pooled(reader.store._pool, lambda c: c.execute("SELECT 1").fetchone()) == (1,)
        assert [(hit.item.path, hit.score) for hit in reader.search(query, k=9)] == want
    reader.close()


def waiting_backends(observer, wanted: int, seconds: float = 60.0) -> int:
    """How many of omnibind's connections wait on a lock, polled until `wanted` do (or `seconds` pass)."""
    deadline = time.monotonic() + seconds
    while True:
        row = observer.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'omnibind' "
                               "AND wait_event_type = 'Lock' AND state = 'active'").fetchone()
        if row[0] >= wanted or time.monotonic() > deadline:
            return int(row[0])
        time.sleep(0.05)


def test_cli_search_answers_from_postgres_as_from_a_folder(pg_url: str, media_dir: Path, tmp_path: Path,
                                                           search_checkpoint: Path) -> None:
    import json

    run(pg_url, media_dir, search_checkpoint)
    run(tmp_path / "index", media_dir, search_checkpoint)
    queries = [["a red circle", "-k", 5], ["a low tone", "-k", 9], ["--image", media_dir / "picture002.png", "-k", 3],
               ["--audio", media_dir / "tone000.wav", "--modality", "audio"], ["a red circle", "--modality", "image"]]
    for query in queries:
        answers = []
        for where in (["--store", pg_url], [tmp_path / "index"]):
            result = invoke("search", *where, *query, "--json", "--device", "cpu")
            assert result.exit_code == 0, result.output
            answers.append(json.loads(result.output))
        server, folder = answers
        assert server["query"] == folder["query"] and server["results"], query
        assert [r["path"] for r in server["results"]] == [r["path"] for r in folder["results"]]
        np.testing.assert_allclose([r["score"] for r in server["results"]], [r["score"] for r in folder["results"]],
                                   atol=1e-5)
    table = invoke("search", "--store", pg_url, "a red circle", "-k", 2)
    assert table.exit_code == 0 and table.output.count("│ image") + table.output.count("│ audio") == 2, table.output
    for query in (["a dog"], ["--image", media_dir / "picture002.png"], []):  # a folder is never read as text
        assert "both an index folder and --store are given" in one_line_error(
            invoke("search", tmp_path / "index", *query, "--store", pg_url))
    assert "got 0 queries" in one_line_error(invoke("search", "--store", pg_url, "--device", "cpu"))
    output = one_line_error(invoke("search", "--store", "postgresql://alice:s3cret-pw@127.0.0.1:1/db", "a dog"))
    assert "cannot connect" in output and "s3cret-pw" not in output
