"""Serving indexed files safely: only a regular file under an indexed root, reached without a symbolic link
(unless that root was indexed with --follow-symlinks), opened without following one, and still the file that
was indexed: its size and mtime, and its content hash whenever the open file is not one already verified
(the check is cached by device, inode, size, mtime and ctime, so a swapped file is always re-hashed). The
bytes are sent from that open descriptor, with single byte ranges for audio players, and HEAD."""

from __future__ import annotations

import hashlib
import os
import re
import stat as stat_module
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from omnibind.search.store import ItemRecord

NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
CHUNK = 256 * 1024
VERIFIED_CACHE = 4096
RANGE = re.compile(r"bytes=(\d{0,18})-(\d{0,18})")


def root_of(path: str, roots: dict[str, Any]) -> str | None:
    """The indexed root that holds `path` (the longest one), or None."""
    holders = [root for root in roots if path.startswith(root.rstrip("/") + "/")]
    return max(holders, key=len) if holders else None


def relative_path(path: str, roots: dict[str, Any]) -> str:
    """The path as responses show it: relative to its indexed root (just the file name when none is known)."""
    root = root_of(path, roots)
    return path[len(root.rstrip("/")) + 1 :] if root is not None else PurePosixPath(path).name


@dataclass(frozen=True)
class OpenFile:
    """A verified indexed file, open for reading; whoever holds it closes `fd`."""

    fd: int
    size: int


class FileGuard:
    """Opens indexed files for serving after the checks in the module docstring (HTTP 410 when one fails)."""

    def __init__(self) -> None:
        self._verified: OrderedDict[tuple[int, ...], str] = OrderedDict()
        self._lock = threading.Lock()

    def open(self, record: ItemRecord, roots: dict[str, Any]) -> OpenFile:
        """The item's file, open and verified; HTTPException 410 naming the item when it cannot be served."""
        root = root_of(record.path, roots)
        if root is None and roots:  # an index from before roots were recorded has none: the other checks apply
            raise _gone(record, "it is not under an indexed folder")
        follow = root is not None and bool((roots.get(root) or {}).get("follow_symlinks", False))
        if not follow and os.path.realpath(record.path) != record.path:
            raise _gone(record, "it is reached through a symbolic link now")
        try:
            fd = os.open(record.path, os.O_RDONLY | (0 if follow else NOFOLLOW) | getattr(os, "O_NONBLOCK", 0))
        except OSError as err:
            raise _gone(record, "its file is gone since indexing, or is a symbolic link now") from err
        try:
            info = os.fstat(fd)
            if not stat_module.S_ISREG(info.st_mode):
                raise _gone(record, "it is not a regular file any more")
            if (info.st_size, info.st_mtime_ns) != (record.size, record.mtime_ns):
                raise _gone(record, "it changed since indexing")
            key = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)
            with self._lock:
                known = self._verified.get(key)
            if known != record.sha256:
                if _hash(fd) != record.sha256:
                    raise _gone(record, "its content changed since indexing")
                with self._lock:
                    self._verified[key] = record.sha256
                    while len(self._verified) > VERIFIED_CACHE:
                        self._verified.popitem(last=False)
        except BaseException:
            os.close(fd)
            raise
        return OpenFile(fd, info.st_size)


def _gone(record: ItemRecord, why: str) -> HTTPException:
    return HTTPException(410, f"item {record.id}: {why} (re-run omnibind index)")


def _hash(fd: int) -> str:
    digest, offset = hashlib.sha256(), 0
    while chunk := os.pread(fd, 1 << 20, offset):
        digest.update(chunk)
        offset += len(chunk)
    return digest.hexdigest()


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The (start, end-exclusive) of a single-range `Range` header; None for no header or several ranges
    (the whole file is sent); HTTPException 400 when malformed, 416 when it lies outside the file."""
    if header is None:
        return None
    header = header.strip()
    if "," in header:
        return None  # several ranges: answered with the whole file, as RFC 9110 allows
    match = RANGE.fullmatch(header)
    if match is None or match.group(1) == match.group(2) == "":
        raise HTTPException(400, f"Range header: got {header[:60]!r} (expected bytes=START-END, bytes=START- or "
                                 "bytes=-SUFFIX)")
    first, last = match.group(1), match.group(2)
    if first == "":
        length = min(int(last), size)
        start, end = size - length, size
    else:
        start = int(first)
        end = size if last == "" else min(int(last) + 1, size)
    if start >= size or end <= start:
        raise HTTPException(416, f"Range header: {header[:60]!r} lies outside the file of {size} bytes",
                            headers={"content-range": f"bytes */{size}"})
    return start, end


class FileResponse(Response):
    """The bytes [start, end) of an open descriptor (closed when the answer ends, however it ends)."""

    def __init__(self, opened: OpenFile, media_type: str, filename: str, span: tuple[int, int] | None,
                 send_body: bool) -> None:
        self.fd = opened.fd
        self.start, self.end = span if span is not None else (0, opened.size)
        self.send_body = send_body
        self.status_code = 206 if span is not None else 200
        self.background = None
        headers = {"content-length": str(self.end - self.start), "accept-ranges": "bytes",
                   "content-disposition": f"inline; filename*=utf-8''{_quote(filename)}",
                   "content-type": media_type, "cache-control": "private, max-age=3600"}
        if span is not None:
            headers["content-range"] = f"bytes {self.start}-{self.end - 1}/{opened.size}"
        self.raw_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
            offset = self.start
            while self.send_body and offset < self.end:
                chunk = await run_in_threadpool(os.pread, self.fd, min(CHUNK, self.end - offset), offset)
                if not chunk:
                    break  # the file shrank meanwhile: the client sees a short body
                offset += len(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": offset < self.end})
            if not self.send_body or offset < self.end:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            os.close(self.fd)


def _quote(name: str) -> str:
    from urllib.parse import quote

    return quote(name, safe="")
