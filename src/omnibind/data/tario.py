"""WebDataset tar shards: a deterministic writer and a streaming reader that reports truncation.

A sample is the run of consecutive members sharing a key: `dir/key.ext` (the key is everything before
the first dot of the file name, as in WebDataset). Shards written here are byte-identical for the same
input (fixed mtime, owner and mode) so a dataset built twice with one seed hashes the same.
"""

from __future__ import annotations

import io
import os
import re
import tarfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import IO, Any

from omnibind.data.samples import RawSample, is_url, local_path
from omnibind.data.skips import MEMBER_UNNAMED, SHARD_TRUNCATED, SHARD_UNREADABLE
from omnibind.errors import InputError

BLOCK = 512
_KEY = re.compile(r"[^./\s][^.\s]*")  # no dots (they separate key and extension) and no whitespace
OnSkip = Callable[[str, str, str], None]  # (reason, key, detail)


def check_key(key: str) -> str:
    """A key WebDataset splits back out unchanged: no dots, no whitespace, not starting with '/'."""
    if not _KEY.fullmatch(key):
        raise InputError("key", f"got {key!r}", "a sample key without dots or whitespace")
    return key


class ShardWriter(AbstractContextManager["ShardWriter"]):
    """Writes samples into `PREFIX-000000.tar`, `PREFIX-000001.tar`, ... of at most `max_count` samples
    (and about `max_bytes`); each shard is written under a temporary name and renamed when complete."""

    def __init__(self, folder: str | Path, prefix: str = "shard", max_count: int = 1000,
                 max_bytes: int | None = None) -> None:
        if max_count < 1:
            raise InputError("--shard-size", f"got {max_count}", "at least 1 example per shard")
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.prefix, self.max_count, self.max_bytes = prefix, max_count, max_bytes
        self.paths: list[Path] = []
        self.count = 0
        self._tar: tarfile.TarFile | None = None
        self._in_shard = 0
        self._bytes = 0

    def write(self, key: str, fields: dict[str, bytes]) -> None:
        """Append one sample; `fields` maps extensions (`png`, `flac`, `txt`, `json`) to bytes."""
        check_key(key)
        size = sum(len(v) for v in fields.values())
        full = self._in_shard >= self.max_count or (
            self.max_bytes is not None and self._in_shard > 0 and self._bytes + size > self.max_bytes)
        if self._tar is None or full:
            self._open_next()
        assert self._tar is not None
        for ext in sorted(fields):
            info = tarfile.TarInfo(f"{key}.{ext}")
            info.size, info.mtime, info.mode = len(fields[ext]), 0, 0o644
            self._tar.addfile(info, io.BytesIO(fields[ext]))
        self._in_shard += 1
        self._bytes += size
        self.count += 1

    def _open_next(self) -> None:
        self._finish()
        path = self.folder / f"{self.prefix}-{len(self.paths):06d}.tar"
        self.paths.append(path)
        self._tar = tarfile.open(path.with_suffix(".tar.tmp"), "w", format=tarfile.USTAR_FORMAT)  # noqa: SIM115
        self._in_shard, self._bytes = 0, 0

    def _finish(self) -> None:
        if self._tar is not None:
            self._tar.close()
            final = self.paths[-1]
            os.replace(final.with_suffix(".tar.tmp"), final)
            self._tar = None

    def close(self) -> None:
        """Finish the last shard."""
        self._finish()

    def __exit__(self, *exc: Any) -> None:
        if exc[0] is None:
            self.close()
        elif self._tar is not None:
            self._tar.close()
            self.paths[-1].with_suffix(".tar.tmp").unlink(missing_ok=True)
            self.paths.pop()


class _Tail(io.RawIOBase):
    """Counts the bytes read through it and keeps the last few records, to check the end-of-archive block."""

    KEEP = 64 * 1024  # tarfile reads 10 KiB records, so the block after the last member is always in here

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw, self.count, self.tail = raw, 0, bytearray()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.raw.read(len(buffer))
        buffer[: len(data)] = data
        self.count += len(data)
        self.tail += data
        if len(self.tail) > 2 * self.KEEP:  # trim now and then, not on every read
            del self.tail[: -self.KEEP]
        return len(data)

    def ended_cleanly(self, offset: int) -> bool:
        """True when a zero block follows the last member (tarfile ends silently on a cut-off header)."""
        start = offset - (self.count - len(self.tail))
        block = bytes(self.tail[start : start + BLOCK]) if start >= 0 else b""
        return len(block) == BLOCK and not any(block)


def open_binary(url: str) -> IO[bytes]:
    """Open a local path, `file://` path or any fsspec URL for streaming reads."""
    if is_url(url):
        import fsspec

        return fsspec.open(url, "rb").open()
    return open(local_path(url), "rb")


def read_tar(url: str, on_skip: OnSkip) -> Iterator[RawSample]:
    """Samples of one shard in order. A truncated or unreadable shard ends early: the sample that was
    being read is dropped and `on_skip` is told why; the samples before it are yielded as usual."""
    try:
        handle = open_binary(url)
    except (OSError, ValueError) as err:
        on_skip(SHARD_UNREADABLE, url, f"{err.__class__.__name__}: {err}")
        return
    with handle:
        tail = _Tail(handle)
        key: str | None = None
        fields: dict[str, bytes] = {}
        try:
            with tarfile.open(fileobj=tail, mode="r|") as tar:  # type: ignore[call-overload]
                for member in tar:
                    if not member.isfile():
                        continue
                    folder, _, name = member.name.rpartition("/")
                    stem, dot, ext = name.partition(".")
                    if not dot or not stem:
                        on_skip(MEMBER_UNNAMED, f"{url}/{member.name}", "expected KEY.EXT")
                        continue
                    member_key = f"{folder}/{stem}" if folder else stem
                    data = tar.extractfile(member).read()  # type: ignore[union-attr]
                    if member_key != key:
                        if key is not None and fields:
                            yield RawSample(key, fields)
                        key, fields = member_key, {}
                    fields.setdefault(ext.lower(), data)
                offset = tar.offset
        except (tarfile.TarError, OSError, EOFError, ValueError) as err:
            reason = SHARD_TRUNCATED if "end of data" in str(err) or "truncated" in str(err) else SHARD_UNREADABLE
            on_skip(reason, f"{url}#{key}" if key else url, str(err))
            return
        if not tail.ended_cleanly(offset):
            on_skip(SHARD_TRUNCATED, f"{url}#{key}" if key else url, "no end-of-archive block")
            return
        if key is not None and fields:
            yield RawSample(key, fields)
