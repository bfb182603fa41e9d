"""Find media files under a folder and describe one file (its hash, plus what its modality records about it:
an image's size, a sound's duration, ...). Which files count as media is the modality registry's answer.

The walk never follows a symbolic link unless asked to (`follow_symlinks`), and names every media-named entry
it cannot index with a reason (an empty file, a FIFO, a dangling link, a name that is not UTF-8, ...), so the
indexer can count and report it instead of failing on it."""

from __future__ import annotations

import errno
import hashlib
import os
import stat as stat_module
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

import omnibind.modalities as registry
from omnibind.errors import InputError
from omnibind.search.store import MediaInfo, plain_meta

HASH_CHUNK = 1 << 20
NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


@dataclass(frozen=True)
class FoundFile:
    """A media file seen by the walk: absolute path, modality and the stat values change detection uses."""

    path: str
    modality: str
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class SkippedFile:
    """A media-named entry the walk leaves out, and why (shown by name in the index report)."""

    path: str
    reason: str


def printable(path: str) -> str:
    """A path as reports show it: undecodable bytes as \\xNN, control characters (a newline) escaped."""
    raw = os.fsencode(path).decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in raw)


def storable(path: str) -> bool:
    """Whether SQLite can hold the path as text (a name that is not valid UTF-8 cannot)."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def walk_media(root: Path, skip: Collection[Path] = (), follow_symlinks: bool = False,
               ) -> Iterator[FoundFile | SkippedFile]:
    """Files of every registered media modality under `root`, in sorted order, and the media-named entries
    that cannot be indexed (with a reason); hidden entries, `skip` folders and links to folders are not
    entered, and links to files are followed only with `follow_symlinks`."""
    skipped = {os.fspath(p.resolve()) for p in skip}
    unreadable: list[SkippedFile] = []

    def folder_error(err: OSError) -> None:
        unreadable.append(SkippedFile(str(err.filename), f"folder cannot be read ({err.strerror or err})"))

    for folder, dirs, files in os.walk(root, followlinks=False, onerror=folder_error):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and os.path.join(folder, d) not in skipped)
        for name in sorted(files):
            modality = registry.modality_of(name)
            if modality is None or name.startswith("."):
                continue
            yield _examine(os.path.join(folder, name), modality, follow_symlinks)
    yield from unreadable


def _examine(path: str, modality: str, follow_symlinks: bool) -> FoundFile | SkippedFile:
    """The file as a FoundFile, or why it is skipped."""
    if not storable(path):
        return SkippedFile(path, "file name is not valid UTF-8 (rename it to index it)")
    try:
        info = os.lstat(path)
        if stat_module.S_ISLNK(info.st_mode):
            if not os.path.exists(path):
                return SkippedFile(path, "dangling symbolic link")
            if not follow_symlinks:
                return SkippedFile(path, "symbolic link (not followed; index with --follow-symlinks to follow links)")
            info = os.stat(path)
    except OSError as err:
        return SkippedFile(path, f"cannot be read ({err.strerror or err})")
    if not stat_module.S_ISREG(info.st_mode):
        return SkippedFile(path, f"not a regular file ({_kind(info.st_mode)})")
    if info.st_size == 0:
        return SkippedFile(path, "empty file (0 bytes)")
    return FoundFile(path, modality, info.st_size, info.st_mtime_ns)


def _kind(mode: int) -> str:
    for test, name in ((stat_module.S_ISFIFO, "a FIFO"), (stat_module.S_ISSOCK, "a socket"),
                       (stat_module.S_ISCHR, "a character device"), (stat_module.S_ISBLK, "a block device"),
                       (stat_module.S_ISDIR, "a folder")):
        if test(mode):
            return name
    return "a special file"


def file_hash(found: FoundFile, follow_symlinks: bool = False) -> str:
    """SHA-256 of the file, read in chunks from a descriptor opened without following a link (unless
    allowed), after checking it is still the regular file of the size and mtime the walk saw."""
    flags = os.O_RDONLY | (0 if follow_symlinks else NOFOLLOW) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(found.path, flags)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise InputError(found.path, "became a symbolic link while being indexed", "a regular file") from err
        raise
    try:
        info = os.fstat(fd)
        if not stat_module.S_ISREG(info.st_mode) or (info.st_size, info.st_mtime_ns) != (found.size, found.mtime_ns):
            raise InputError(found.path, "changed while being indexed", "a file left alone while it is indexed "
                                                                        "(it is retried on the next run)")
        digest = hashlib.sha256()
        with os.fdopen(fd, "rb", closefd=False) as handle:
            while chunk := handle.read(HASH_CHUNK):
                digest.update(chunk)
        return digest.hexdigest()
    finally:
        os.close(fd)


def describe(found: FoundFile, sha256: str) -> MediaInfo:
    """Metadata of one file: its content hash plus what its modality's `describe_file()` reads from the header
    (errors name the file)."""
    modality = registry.get(found.modality)
    meta = plain_meta(modality.describe_file(Path(found.path), found.path), found.path, found.modality)
    return MediaInfo(found.path, found.modality, found.size, found.mtime_ns, sha256, meta)
