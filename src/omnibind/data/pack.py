"""`omnibind data pack`: a JSONL manifest of files on disk → WebDataset tar shards."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from omnibind.data.samples import FileRef
from omnibind.data.shardlist import manifest_lines
from omnibind.data.skips import MANIFEST_LINE_INVALID, SampleSkip, SkipStats
from omnibind.data.tario import ShardWriter
from omnibind.errors import InputError
from omnibind.progress import progress_bar

DUPLICATE_KEY = "duplicate key"
_UNSAFE = re.compile(r"[.\s]")


@dataclass
class PackReport:
    """What a pack wrote: shard paths, examples per shard total, bytes, and what it skipped."""

    paths: list[Path]
    examples: int
    bytes: int
    skipped: SkipStats = field(default_factory=SkipStats)

    @property
    def pattern(self) -> str:
        """A brace pattern naming every shard written (what LoaderConfig.shards takes)."""
        if not self.paths:
            return ""
        first = self.paths[0]
        prefix, width = first.name.rsplit("-", 1)[0], len(first.stem.rsplit("-", 1)[1])
        if len(self.paths) == 1:
            return str(first)
        return str(first.parent / f"{prefix}-{{{0:0{width}d}..{len(self.paths) - 1:0{width}d}}}.tar")


def pack(manifest: str | Path, out: str | Path, shard_size: int = 1000, prefix: str = "shard",
         max_shard_bytes: int | None = None, show_progress: bool = True) -> PackReport:
    """Write every usable manifest entry into shards of at most `shard_size` examples; entries with
    missing files or invalid lines are skipped and counted (the report says which)."""
    manifest = str(manifest)
    if not Path(manifest).is_file():
        raise InputError(manifest, "manifest not found", "a JSONL file with one example per line")
    lines = manifest_lines(manifest)
    if not lines:
        raise InputError(manifest, "manifest has no entries", "one JSON object per line")
    skipped, seen, total_bytes = SkipStats(), set(), 0
    with ShardWriter(out, prefix, shard_size, max_shard_bytes) as writer, progress_bar(not show_progress) as bar:
        task = bar.add_task(f"packing {Path(manifest).name}", total=len(lines), unit="examples")
        for line in lines:
            bar.advance(task)
            try:
                sample = line.materialize()
                key = _UNSAFE.sub("_", sample.key).lstrip("/")
                if not key:
                    raise SampleSkip(MANIFEST_LINE_INVALID, f"{manifest}:{line.lineno}", "empty key")
                if key in seen:
                    raise SampleSkip(DUPLICATE_KEY, key, f"{manifest}:{line.lineno}")
                fields = {ext: (v.read() if isinstance(v, FileRef) else v) for ext, v in sample.fields.items()}
            except SampleSkip as skip:
                skipped.add_skip(skip)
                continue
            seen.add(key)
            writer.write(key, fields)
            total_bytes += sum(len(v) for v in fields.values())
    if writer.count == 0:
        raise InputError(manifest, f"no usable entries; {skipped}", "entries whose files exist")
    return PackReport(list(writer.paths), writer.count, total_bytes, skipped)
