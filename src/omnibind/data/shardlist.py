"""From what a user writes (paths, brace patterns, globs, folders, fsspec URLs, JSONL manifests) to the
list of work units the loader splits across ranks and workers."""

from __future__ import annotations

import functools
import glob
import hashlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import braceexpand

from omnibind.data.samples import ManifestLine, RawSample, is_url, local_path
from omnibind.data.skips import SHARD_UNREADABLE
from omnibind.data.tario import OnSkip, open_binary, read_tar
from omnibind.errors import InputError

MANIFEST_SUFFIXES = (".jsonl", ".jsonl.gz")
SHARD_SUFFIXES = (".tar", ".tar.gz", ".tgz")
MANIFEST_CHUNK = 512  # manifest lines per work unit, so one manifest still spreads over many workers
EXPECTED = "tar shards, brace patterns (shard-{000..009}.tar), a folder of shards, fsspec URLs or .jsonl manifests"


def is_manifest(url: str) -> bool:
    """A JSONL manifest by its suffix."""
    return url.lower().endswith(MANIFEST_SUFFIXES)


def expand_shards(spec: str | Sequence[str]) -> list[str]:
    """Every shard or manifest the spec names, in order; missing local files and empty lists are errors."""
    specs = [spec] if isinstance(spec, str | Path) else list(spec)
    urls: list[str] = []
    for item in specs:
        for expanded in braceexpand.braceexpand(str(item)):
            urls.extend(_expand_one(expanded))
    if not urls:
        raise InputError("shards", f"{specs!r} names no shards", EXPECTED)
    return urls


def _expand_one(url: str) -> list[str]:
    if is_url(url):
        if any(c in url for c in "*?["):
            import fsspec

            _, _, paths = fsspec.get_fs_token_paths(url)
            protocol = url.split("://", 1)[0]
            return sorted(p if "://" in p else f"{protocol}://{p.lstrip('/')}" for p in paths)
        return [url]
    path = local_path(url)
    if any(c in path for c in "*?["):
        matches = sorted(glob.glob(path))
        if not matches:
            raise InputError(url, "pattern matches no files", EXPECTED)
        return matches
    if Path(path).is_dir():
        found = sorted(str(p) for p in Path(path).iterdir() if p.name.lower().endswith(SHARD_SUFFIXES))
        if not found:
            raise InputError(url, "folder holds no .tar shards", EXPECTED)
        return found
    if not Path(path).is_file():
        raise InputError(url, "shard or manifest not found", EXPECTED)
    return [url]


@dataclass(frozen=True)
class Unit:
    """A unit of work: one shard, or a chunk of manifest lines; `part`/`parts` split it further (every
    `parts`-th sample) when there are fewer units than workers, so no worker idles and none duplicates."""

    url: str
    start: int = 0
    stop: int | None = None  # manifest line range [start, stop) of non-blank lines; None for shards
    part: int = 0
    parts: int = 1

    def describe(self) -> str:
        """Stable text form, used in fingerprints and messages."""
        span = "" if self.stop is None else f"[{self.start}:{self.stop}]"
        return f"{self.url}{span}" + (f"%{self.part}/{self.parts}" if self.parts > 1 else "")

    def samples(self, on_skip: OnSkip) -> Iterator[RawSample | ManifestLine]:
        """The unit's samples in order (raw: decoding happens later, in the worker)."""
        if self.stop is None:
            source: Iterator[RawSample | ManifestLine] = read_tar(
                self.url, on_skip if self.part == 0 else _ignore)  # shard-level errors are counted once
        else:
            try:
                source = iter(manifest_lines(self.url)[self.start : self.stop])
            except InputError as err:  # it was readable when the plan was made; now it is not
                if self.part == 0:
                    on_skip(SHARD_UNREADABLE, self.url, err.problem)
                return
        for index, sample in enumerate(source):
            if index % self.parts == self.part:
                yield sample


def _ignore(reason: str, key: str, detail: str) -> None:
    """Shard-level skips seen by parts other than the first (the first counts them)."""


def manifest_lines(url: str) -> tuple[ManifestLine, ...]:
    """Non-blank lines of a manifest, numbered from 1 as an editor shows them (cached per file version)."""
    version = None
    if not is_url(url):
        try:
            stat = Path(local_path(url)).stat()
            version = (stat.st_mtime_ns, stat.st_size)
        except OSError:
            pass
    return _read_manifest(url, version)


@functools.lru_cache(maxsize=4)
def _read_manifest(url: str, version: tuple[int, int] | None) -> tuple[ManifestLine, ...]:
    try:
        with open_binary(url) as handle:
            data = handle.read()
    except (OSError, ValueError) as err:
        raise InputError(url, f"cannot read manifest ({err})", "a readable JSONL file") from err
    if url.lower().endswith(".gz"):
        import gzip

        data = gzip.decompress(data)
    text = data.decode("utf-8", errors="replace")
    return tuple(ManifestLine(url, n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip())


@dataclass(frozen=True)
class ShardPlan:
    """The work units of a shard spec, split so that `global_workers` workers all get some."""

    urls: tuple[str, ...]
    units: tuple[Unit, ...]

    @classmethod
    def build(cls, spec: str | Sequence[str], global_workers: int, chunk: int = MANIFEST_CHUNK) -> ShardPlan:
        """Expand the spec, chunk manifests, and split units into parts when there are too few."""
        urls = expand_shards(spec)
        base: list[Unit] = []
        for url in urls:
            if is_manifest(url):
                count = len(manifest_lines(url))
                base.extend(Unit(url, s, min(s + chunk, count)) for s in range(0, count, chunk))
            else:
                base.append(Unit(url))
        if not base:
            raise InputError("shards", f"{list(urls)!r} hold no examples (empty manifests)", EXPECTED)
        parts = max(1, math.ceil(global_workers / len(base)))
        units = tuple(Unit(u.url, u.start, u.stop, p, parts) for u in base for p in range(parts))
        return cls(tuple(urls), units)

    @property
    def fingerprint(self) -> str:
        """Short hash of the unit list: a saved position only makes sense for the same units."""
        text = "\n".join(u.describe() for u in self.units)
        return hashlib.sha256(text.encode()).hexdigest()[:16]
