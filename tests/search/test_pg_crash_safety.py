"""The PostgreSQL store under the same crash tests as SQLite: SIGKILL at every kind of step and at arbitrary
moments leaves only whole, correct items and a free writer lock, and the next run completes the index without
duplicates or losses; a second indexer is refused while one runs; a `serve --store` process started before new
items were indexed answers with them, without a restart."""

from __future__ import annotations

import hashlib
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from search_media import picture, write_media

import omnibind
from omnibind.errors import InputError
from omnibind.search import SearchIndex, update_index

pytestmark = pytest.mark.slow

# Runs one indexing pass that kills itself with SIGKILL the nth time it reaches the named step.
CHILD = """
import os, signal, sys
import omnibind
from omnibind.search import update_index
index, media, model, step, nth = sys.argv[1:6]
seen = 0
def hook(name):
    global seen
    if name == step:
        seen += 1
        if seen == int(nth):
            os.kill(os.getpid(), signal.SIGKILL)
update_index(index, media, omnibind.load(model), model, batch_size=2, on_step=hook)
"""


def killed_at(url: str, media: Path, model: Path, step: str, nth: int = 1) -> None:
    result = subprocess.run([sys.executable, "-c", CHILD, url, str(media), str(model), step, str(nth)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == -signal.SIGKILL, result.stderr


def media_files(media: Path) -> dict[str, bytes]:
    return {str(p.resolve()): p.read_bytes() for p in media.rglob("*") if p.is_file()}


def rows(url: str, sql: str) -> list[tuple]:
    import psycopg

    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchall()


def check_consistent(url: str, media: Path, stale: tuple[Path, ...] = ()) -> int:
    """The index opens and searches; every item is a whole file that exists, listed once, with a vector of the
    index's size; its hash is the file's current one except for `stale` files (changed, not yet re-indexed)."""
    opened = SearchIndex(url)
    try:
        assert opened.store.integrity_check() == "ok"
        files = media_files(media)
        items = rows(url, "SELECT path, sha256, vector_dims(vector) FROM omnibind_items")
        paths = [path for path, _, _ in items]
        assert len(paths) == len(set(paths))
        for path, sha, dims in items:
            assert path in files and dims == 32
            assert hashlib.sha256(files[path]).hexdigest() == sha or path in {str(p.resolve()) for p in stale}
        assert not {path for (path,) in rows(url, "SELECT path FROM omnibind_failures")} & set(paths)
        assert opened.vectors.count == len(items)
        opened.search(np.ones(32, np.float32) / np.sqrt(32), k=3)
        return len(items)
    finally:
        opened.close()


def search_kinds(url: str) -> dict[str, str]:
    opened = SearchIndex(url)
    try:
        return {modality: info["kind"] for modality, info in opened.stats()["search"].items()}
    finally:
        opened.close()


def check_complete(url: str, media: Path, model_path: Path) -> None:
    """Every file is indexed exactly once with the vector the model gives it now, and is found by it."""
    check_consistent(url, media)
    model = omnibind.load(model_path)
    opened = SearchIndex(url)
    files = media_files(media)
    stats = opened.stats()
    assert stats["items"] == len(files)
    assert {info["kind"] for info in stats["search"].values()} == {"hnsw"}  # built by the run that completed
    for path in files:
        modality = "image" if path.endswith((".png", ".jpg")) else "audio"
        hit = opened.search(model.encode(modality, path).detach().numpy()[0], k=1, modalities=[modality])[0]
        assert hit.item.path == path and hit.score == pytest.approx(1.0, abs=1e-5)
    opened.close()


def test_kill_at_every_step_then_complete(pg_url: str, media_dir: Path, search_checkpoint: Path) -> None:
    killed_at(pg_url, media_dir, search_checkpoint, "scanned")  # the index was created, then the run died
    assert check_consistent(pg_url, media_dir) == 0
    killed_at(pg_url, media_dir, search_checkpoint, "batch-embedded", nth=3)  # two batches of 2 committed
    assert check_consistent(pg_url, media_dir) == 4
    killed_at(pg_url, media_dir, search_checkpoint, "batch-committed", nth=2)
    assert check_consistent(pg_url, media_dir) == 8
    assert search_kinds(pg_url) == {"image": "exact", "audio": "exact"}  # searched by a scan until a run completes
    report = update_index(pg_url, media_dir, omnibind.load(search_checkpoint), search_checkpoint)
    assert report.embedded == 1 and report.unchanged == 8
    check_complete(pg_url, media_dir, search_checkpoint)

    # A second round of changes, killed after the deletions (committed, the changed file not yet re-embedded).
    for name in ("picture000.png", "tone002.wav"):
        (media_dir / name).unlink()
    picture(9).save(media_dir / "picture001.jpg")  # changed content
    write_media(media_dir, images=3, sounds=1, start=50)
    changed = (media_dir / "picture001.jpg",)
    killed_at(pg_url, media_dir, search_checkpoint, "removed")
    assert check_consistent(pg_url, media_dir, stale=changed) == 7
    killed_at(pg_url, media_dir, search_checkpoint, "done")  # after its last commit: nothing is missing
    check_complete(pg_url, media_dir, search_checkpoint)


def test_kill_the_cli_at_arbitrary_moments(pg_url: str, tmp_path: Path, search_checkpoint: Path) -> None:
    media = tmp_path / "media"
    write_media(media, images=16, sounds=8)
    command = [sys.executable, "-m", "omnibind.cli", "index", str(media), "-m", str(search_checkpoint),
               "--store", pg_url, "--batch-size", "1", "--device", "cpu", "--runtime", "fp32"]  # exact vectors
    partial = refused = 0
    for threshold in (3, 12):
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            if wait_for_items(pg_url, threshold, process):
                try:  # a second indexer meanwhile is refused, not interleaved
                    update_index(pg_url, media, omnibind.load(search_checkpoint), search_checkpoint)
                except InputError as err:
                    assert "another process is updating this index" in str(err)
                    refused += 1
        finally:
            process.kill()  # SIGKILL; a no-op when the run already finished (a busy machine can get there first)
            process.wait(timeout=30)
        count = check_consistent(pg_url, media)
        assert count >= threshold
        partial += count < 24
    assert partial and refused, "every kill landed after the run had finished"
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    check_complete(pg_url, media, search_checkpoint)


def wait_for_items(url: str, count: int, process: subprocess.Popen, timeout: float = 60.0) -> bool:
    """Poll the database (a reader, as a server would be) until it holds `count` items; False when the run ended."""
    import psycopg

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if rows(url, "SELECT COUNT(*) FROM omnibind_items")[0][0] >= count:
                return process.poll() is None
        except psycopg.errors.UndefinedTable:
            pass  # not created yet
        time.sleep(0.01)
    return False


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_serve_processes_see_items_indexed_after_they_started(pg_url: str, media_dir: Path,
                                                              search_checkpoint: Path) -> None:
    import httpx

    update_index(pg_url, media_dir, omnibind.load(search_checkpoint), search_checkpoint)
    ports = [free_port(), free_port()]
    servers = [subprocess.Popen([sys.executable, "-m", "omnibind.cli", "serve", "--store", pg_url, "--port", str(port),
                                 "--device", "cpu"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
               for port in ports]
    try:
        for port, server in zip(ports, servers, strict=True):
            assert health(port, server)["items"] == 9
        new = write_media(media_dir, images=2, sounds=1, start=60)
        update_index(pg_url, media_dir, omnibind.load(search_checkpoint), search_checkpoint)
        for port, server in zip(ports, servers, strict=True):
            deadline = time.monotonic() + 20
            while health(port, server)["items"] != 12 and time.monotonic() < deadline:
                time.sleep(0.2)
            status = health(port, server)
            assert status["items"] == 12 and status["search"]["image"]["kind"] == "hnsw"
            answer = httpx.post(f"http://127.0.0.1:{port}/search", json={"text": "a picture", "k": 20}, timeout=30)
            assert answer.status_code == 200, answer.text
            found = {result["item"]["path"] for result in answer.json()["results"]}
            assert {path.name for path in new} <= {Path(path).name for path in found}
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=30)


def health(port: int, server: subprocess.Popen, timeout: float = 60.0) -> dict:
    """The service's /health once it answers."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.poll() is None, server.stderr.read().decode() if server.stderr else "serve exited"
        try:
            return httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).json()
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"serve on port {port} did not answer within {timeout} s")
