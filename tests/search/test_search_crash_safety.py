"""SIGKILL during indexing, at every kind of step and at arbitrary moments: the index still opens, holds only
whole, correct items, and the next run completes it without duplicates or losses."""

from __future__ import annotations

import hashlib
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from search_media import picture, write_media

import omnibind
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


def killed_at(index: Path, media: Path, model: Path, step: str, nth: int = 1) -> None:
    result = subprocess.run([sys.executable, "-c", CHILD, str(index), str(media), str(model), step, str(nth)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == -signal.SIGKILL, result.stderr


def media_files(media: Path) -> dict[str, bytes]:
    return {str(p.resolve()): p.read_bytes() for p in media.rglob("*") if p.is_file()}


def check_consistent(index: Path, media: Path, stale: tuple[Path, ...] = ()) -> dict[str, int]:
    """The index opens and searches; every item is a whole file that exists, listed once, with a vector; its
    hash is the file's current one except for `stale` files, changed since and not yet re-indexed."""
    opened = SearchIndex(index)
    try:
        assert opened.store.integrity_check() == "ok"
        files = media_files(media)
        with sqlite3.connect(index / "index.sqlite") as db:
            rows = db.execute("SELECT path, sha256, length(vector) FROM items").fetchall()
        paths = [path for path, _, _ in rows]
        assert len(paths) == len(set(paths))
        for path, sha, size in rows:
            assert path in files and size == 4 * 32
            assert hashlib.sha256(files[path]).hexdigest() == sha or path in {str(p.resolve()) for p in stale}
        assert opened.vectors.count == len(rows)
        opened.search(np.ones(32, np.float32) / np.sqrt(32), k=3)
        return {path: 1 for path in paths}
    finally:
        opened.close()


def check_complete(index: Path, media: Path, model_path: Path) -> None:
    """Every file is indexed exactly once with the vector the model gives it now."""
    check_consistent(index, media)
    model = omnibind.load(model_path)
    opened = SearchIndex(index)
    files = media_files(media)
    assert opened.stats()["items"] == len(files)
    for path in files:
        modality = "image" if path.endswith((".png", ".jpg")) else "audio"
        hit = opened.search(model.encode(modality, path).detach().numpy()[0], k=1, modalities=[modality])[0]
        assert hit.item.path == path and hit.score == pytest.approx(1.0, abs=1e-5)


def test_kill_at_every_step_then_complete(media_dir: Path, tmp_path: Path, search_checkpoint: Path) -> None:
    index = tmp_path / "index"
    killed_at(index, media_dir, search_checkpoint, "scanned")
    assert check_consistent(index, media_dir) == {}
    killed_at(index, media_dir, search_checkpoint, "batch-embedded", nth=3)  # two batches of 2 committed
    assert len(check_consistent(index, media_dir)) == 4
    killed_at(index, media_dir, search_checkpoint, "batch-committed", nth=2)
    assert len(check_consistent(index, media_dir)) == 8
    killed_at(index, media_dir, search_checkpoint, "vectors-written")  # everything committed, cache unpublished
    assert len(check_consistent(index, media_dir)) == 9
    report = update_index(index, media_dir, omnibind.load(search_checkpoint), search_checkpoint)
    assert report.embedded == 0 and report.unchanged == 9
    assert not any(p.name.startswith(".vectors-tmp-") for p in index.iterdir())
    check_complete(index, media_dir, search_checkpoint)

    # A second round of changes, killed after the deletions and again mid-embedding.
    for name in ("picture000.png", "tone002.wav"):
        (media_dir / name).unlink()
    picture(9).save(media_dir / "picture001.jpg")  # changed content
    write_media(media_dir, images=3, sounds=1, start=50)
    changed = (media_dir / "picture001.jpg",)
    killed_at(index, media_dir, search_checkpoint, "removed")
    check_consistent(index, media_dir, stale=changed)
    killed_at(index, media_dir, search_checkpoint, "batch-committed", nth=1)
    check_consistent(index, media_dir, stale=changed)
    update_index(index, media_dir, omnibind.load(search_checkpoint), search_checkpoint)
    check_complete(index, media_dir, search_checkpoint)


def test_kill_the_cli_at_arbitrary_moments(tmp_path: Path, search_checkpoint: Path) -> None:
    media, index = tmp_path / "media", tmp_path / "index"
    write_media(media, images=40, sounds=20)
    command = [sys.executable, "-m", "omnibind.cli", "index", str(media), "-m", str(search_checkpoint),
               "--index", str(index), "--batch-size", "1", "--device", "cpu", "--runtime", "fp32"]  # exact vectors
    partial = 0
    for threshold in (3, 20, 45):
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            wait_for_items(index, threshold, process)
        finally:
            process.kill()  # SIGKILL; a no-op when the run already finished (a busy machine can get there first)
            process.wait(timeout=30)
        count = len(check_consistent(index, media))
        assert count >= threshold
        partial += count < 60
    assert partial, "every kill landed after the run had finished"
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    check_complete(index, media, search_checkpoint)


def wait_for_items(index: Path, count: int, process: subprocess.Popen, timeout: float = 60.0) -> None:
    """Poll the database (a reader, as a server would be) until it holds `count` items."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with sqlite3.connect(f"file:{index / 'index.sqlite'}?mode=ro", uri=True, timeout=1) as db:
                if db.execute("SELECT COUNT(*) FROM items").fetchone()[0] >= count:
                    return
        except sqlite3.Error:
            pass  # not created yet
        time.sleep(0.005)
