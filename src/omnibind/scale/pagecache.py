"""Drop files from memory so that the next read goes to the disk, and say how much of a file is in memory and
on which disk it lies: benchmarks/search_scale.py --cold measures an index past RAM with them (Linux only).

`posix_fadvise(POSIX_FADV_DONTNEED)` alone leaves every page that a process has mapped (numpy's memmap of the
re-ranking vectors, faiss' mapped inverted lists), so `evict` first unmaps this process's pages of the file
(`madvise(MADV_PAGEOUT)`, Linux ≥ 5.4, which also reclaims them, then `MADV_DONTNEED`; the mapping stays valid
and faults the data back in from the file), then drops the file's cached pages. `resident_bytes` counts the
file's pages in the page cache with `mincore` on a fresh mapping of it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import mmap
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

MADV_DONTNEED = getattr(mmap, "MADV_DONTNEED", 4)
MADV_PAGEOUT = getattr(mmap, "MADV_PAGEOUT", 21)
PROT_READ, MAP_SHARED = mmap.PROT_READ, mmap.MAP_SHARED
MAP_FAILED = ctypes.c_void_p(-1).value
PAGE = mmap.PAGESIZE
METHOD = ("madvise(MADV_PAGEOUT), then madvise(MADV_DONTNEED), on this process's mappings of the file; then "
          "fdatasync and posix_fadvise(POSIX_FADV_DONTNEED) on the file")


@dataclass(frozen=True)
class Mapping:
    """One line of /proc/self/maps: a range of this process's addresses mapping part of a file."""

    start: int
    end: int
    perms: str
    path: str

    @property
    def safe_to_drop(self) -> bool:
        """Shared or read-only: dropping its pages loses nothing (a private writable page may hold the only
        copy of a write)."""
        return "s" in self.perms or "w" not in self.perms


@cache
def _libc() -> Any:
    """libc with errno kept, and the argument types of the calls used here."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    size, pointer = ctypes.c_size_t, ctypes.c_void_p
    libc.madvise.argtypes = [pointer, size, ctypes.c_int]
    libc.mincore.argtypes = [pointer, size, ctypes.POINTER(ctypes.c_ubyte)]
    libc.mmap.argtypes = [pointer, size, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
    libc.mmap.restype = pointer
    libc.munmap.argtypes = [pointer, size]
    return libc


def mappings(path: str | Path) -> list[Mapping]:
    """This process's mappings of the file (matched by device and inode, or by path where a stacked file
    system such as overlayfs shows the underlying file's numbers)."""
    stat, real = os.stat(path), os.path.realpath(path)
    found = []
    with open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split(maxsplit=5)
            if len(fields) < 6:
                continue
            major, minor = (int(part, 16) for part in fields[3].split(":"))
            same_file = (os.makedev(major, minor), int(fields[4])) == (stat.st_dev, stat.st_ino)
            if same_file or fields[5].rstrip("\n") == real:
                start, end = (int(part, 16) for part in fields[0].split("-"))
                found.append(Mapping(start, end, fields[1], fields[5].rstrip("\n")))
    return found


def _madvise(mapping: Mapping, advice: int) -> int:
    """madvise over the whole mapping; 0, or the errno it failed with."""
    if _libc().madvise(mapping.start, mapping.end - mapping.start, advice) == 0:
        return 0
    return ctypes.get_errno()


def evict(path: str | Path) -> None:
    """Drop the file's pages from this process's mappings and from the page cache (written back first), so the
    next read of it goes to the disk; an OSError says when the kernel refused (pages mapped by other processes
    stay)."""
    for mapping in mappings(path):
        if not mapping.safe_to_drop:
            continue
        _madvise(mapping, MADV_PAGEOUT)  # best effort: EINVAL before Linux 5.4, DONTNEED below does the rest
        failed = _madvise(mapping, MADV_DONTNEED)
        if failed:
            raise OSError(failed, f"madvise(MADV_DONTNEED) on {mapping.path}: {os.strerror(failed)}")
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fdatasync(fd)  # dirty pages cannot be dropped until written
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def resident_bytes(path: str | Path) -> int:
    """Bytes of the file now in the page cache (by any process), from mincore on a fresh read-only mapping."""
    size = os.path.getsize(path)
    if size == 0:
        return 0
    libc, pages = _libc(), (size + PAGE - 1) // PAGE
    fd = os.open(path, os.O_RDONLY)
    try:
        address = libc.mmap(None, size, PROT_READ, MAP_SHARED, fd, 0)
    finally:
        os.close(fd)
    if address in (None, MAP_FAILED):
        failed = ctypes.get_errno() or errno.EINVAL
        raise OSError(failed, f"mmap of {path}: {os.strerror(failed)}")
    try:
        vector = (ctypes.c_ubyte * pages)()
        if libc.mincore(address, size, vector) != 0:
            failed = ctypes.get_errno()
            raise OSError(failed, f"mincore on {path}: {os.strerror(failed)}")
        return sum(byte & 1 for byte in bytes(vector)) * PAGE
    finally:
        libc.munmap(address, size)


def storage(path: str | Path) -> dict[str, Any]:
    """Where a path lies: its mount point, file system, device and, when /sys says, the block device's name,
    whether it is rotational (virtual disks often report 1 whatever backs them) and its model."""
    real = os.path.realpath(path)
    mount = _mount_of(real)
    if mount is None:
        return {"path": real}
    major_minor, point, fstype, source = mount
    found: dict[str, Any] = {"path": real, "mount_point": point, "fstype": fstype, "source": source,
                             "device_number": major_minor, "kernel": os.uname().release}
    return {**found, **_block_device(major_minor)}


def _mount_of(real: str) -> tuple[str, str, str, str] | None:
    """(major:minor, mount point, file system type, source) of the deepest mount holding `real`."""
    best = None
    try:
        with open("/proc/self/mountinfo") as info:
            lines = info.read().splitlines()
    except OSError:
        return None
    for line in lines:
        head, _, tail = line.partition(" - ")
        fields, rest = head.split(), tail.split()
        if len(fields) < 5 or len(rest) < 2:
            continue
        point = fields[4].encode().decode("unicode_escape")  # \040 for a space
        inside = real == point or real.startswith(point.rstrip("/") + "/")
        if inside and (best is None or len(point) >= len(best[1])):
            best = (fields[2], point, rest[0], rest[1])
    return best


def _block_device(major_minor: str) -> dict[str, Any]:
    """The block device (the whole disk of a partition) behind a device number: name, rotational, model."""
    where = Path("/sys/dev/block") / major_minor
    if not where.exists():
        return {}
    device = where.resolve()
    disk = device if (device / "queue").exists() else device.parent
    found: dict[str, Any] = {"block_device": disk.name}
    for key, file in (("rotational", "queue/rotational"), ("model", "device/model")):
        try:
            text = (disk / file).read_text().strip()
        except OSError:
            continue
        found[key] = bool(int(text)) if key == "rotational" else text
    return found
