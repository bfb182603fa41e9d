"""omnibind.scale.pagecache: a memory-mapped, touched file really leaves memory (page cache by mincore, and the
mapping's own resident pages by /proc/self/smaps) where posix_fadvise alone leaves it, and reads back intact."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from omnibind.scale import pagecache

SIZE = 16 * 2**20


def on_tmpfs(path: Path) -> bool:
    """tmpfs and ramfs keep files only in memory: nothing to evict to."""
    return pagecache.storage(path).get("fstype") in ("tmpfs", "ramfs")


def mapping_rss(path: Path) -> int:
    """Resident bytes of this process's mappings of `path` (the Rss lines of /proc/self/smaps)."""
    starts = {f"{m.start:x}" for m in pagecache.mappings(path)}
    total, inside = 0, False
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            head = line.split(maxsplit=1)[0]
            if "-" in head and not head.endswith(":"):
                inside = head.split("-")[0] in starts
            elif inside and head == "Rss:":
                total += int(line.split()[1]) * 1024
    return total


@pytest.fixture
def mapped(tmp_path: Path) -> Iterator[tuple[Path, np.memmap]]:
    if not os.path.exists("/proc/self/maps"):
        pytest.skip("needs Linux's /proc/self/maps")
    if on_tmpfs(tmp_path):
        pytest.skip(f"{tmp_path} is on tmpfs: its files live in memory, there is no disk to evict to")
    path = tmp_path / "vectors.f32"
    np.arange(SIZE // 4, dtype=np.float32).tofile(path)
    array = np.memmap(path, dtype=np.float32, mode="r")
    assert float(array[::1024].sum()) > 0  # touch every page
    yield path, array
    del array


def test_a_mapped_file_is_evicted_where_fadvise_alone_leaves_it(mapped: tuple[Path, np.memmap]) -> None:
    path, array = mapped
    assert pagecache.resident_bytes(path) >= 0.9 * SIZE and mapping_rss(path) >= 0.9 * SIZE
    fd = os.open(path, os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)
    assert pagecache.resident_bytes(path) >= 0.9 * SIZE, "fadvise alone does not drop pages mapped here"
    try:
        pagecache.evict(path)
    except OSError as err:
        pytest.skip(f"the kernel refused madvise: {err}")
    assert pagecache.resident_bytes(path) <= 0.02 * SIZE, "evicted from the page cache"
    assert mapping_rss(path) <= 0.02 * SIZE, "unmapped from this process"
    assert np.array_equal(array[:: 4097], np.arange(0, SIZE // 4, 4097, dtype=np.float32)), "reads back intact"
    assert pagecache.resident_bytes(path) > 0, "and the read came back from the file"


def test_an_unmapped_file_is_evicted_too(tmp_path: Path) -> None:
    if on_tmpfs(tmp_path):
        pytest.skip(f"{tmp_path} is on tmpfs: its files live in memory, there is no disk to evict to")
    path = tmp_path / "lists"
    path.write_bytes(os.urandom(2**20))  # dirty pages: written back, then dropped
    assert path.read_bytes() and pagecache.resident_bytes(path) > 0
    pagecache.evict(path)
    assert pagecache.resident_bytes(path) <= 0.02 * 2**20


def test_storage_names_the_file_system(tmp_path: Path) -> None:
    where = pagecache.storage(tmp_path)
    assert where["path"] == os.path.realpath(tmp_path)
    if os.path.exists("/proc/self/mountinfo"):
        assert where["mount_point"] and where["fstype"] and ":" in where["device_number"]
        assert "rotational" not in where or isinstance(where["rotational"], bool)
