"""`omnibind data inspect`: what a set of shards or manifests holds, without decoding anything."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import omnibind.modalities as registry
from omnibind.data.samples import META_EXT, FileRef, RawSample, is_url, local_path
from omnibind.data.shardlist import ShardPlan
from omnibind.data.skips import FILE_MISSING, SampleSkip, SkipStats
from omnibind.progress import progress_bar

META, OTHER = "meta", "other"  # what fields no modality holds count under


@dataclass
class Inspection:
    """Counts per modality and extension, bytes, modality combinations, skips and a few examples."""

    source: str
    shards: int = 0
    examples: int = 0
    modalities: Counter = field(default_factory=Counter)
    extensions: Counter = field(default_factory=Counter)
    bytes_by_modality: Counter = field(default_factory=Counter)
    combinations: Counter = field(default_factory=Counter)
    skipped: SkipStats = field(default_factory=SkipStats)
    samples: list[dict[str, Any]] = field(default_factory=list)

    @property
    def total_bytes(self) -> int:
        """Bytes of every field of every example."""
        return sum(self.bytes_by_modality.values())

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable summary."""
        return {"source": self.source, "shards": self.shards, "examples": self.examples,
                "modalities": dict(self.modalities), "extensions": dict(self.extensions),
                "bytes": dict(self.bytes_by_modality), "combinations": dict(self.combinations),
                "skipped": self.skipped.to_dict()["counts"], "samples": self.samples}


def _modality(field: str) -> str:
    """The modality a field holds (from the registry), "meta" for the JSON metadata, else "other"."""
    modality = registry.for_field(field)
    if modality is not None:
        return modality.name
    return META if field == META_EXT else OTHER


def _size(value: bytes | FileRef) -> int:
    if isinstance(value, bytes):
        return len(value)
    if is_url(value.path):
        return len(value.read())
    try:
        return os.path.getsize(local_path(value.path))
    except OSError as err:
        raise SampleSkip(FILE_MISSING, value.key, value.path) from err


def inspect(spec: str | Sequence[str], examples: int = 3, show_progress: bool = True) -> Inspection:
    """Read every sample of the shards or manifests in `spec` (raw, undecoded) and count what is there."""
    plan = ShardPlan.build(spec, 1)
    report = Inspection(spec if isinstance(spec, str) else ", ".join(map(str, spec)), shards=len(plan.urls))
    with progress_bar(not show_progress) as bar:
        task = bar.add_task("inspecting", total=len(plan.units), unit="shards")
        for unit in plan.units:
            for raw in unit.samples(report.skipped.add):
                try:
                    sample = raw.materialize()
                    sizes = {ext: _size(value) for ext, value in sample.fields.items()}
                except SampleSkip as skip:
                    report.skipped.add_skip(skip)
                    continue
                _count(report, sample, sizes, examples)
            bar.advance(task)
    return report


def _count(report: Inspection, sample: RawSample, sizes: dict[str, int], examples: int) -> None:
    report.examples += 1
    present = sorted({_modality(ext) for ext in sizes} - {META, OTHER})
    report.modalities.update(present)
    report.combinations["+".join(present) or "(none)"] += 1
    for ext, size in sizes.items():
        report.extensions[ext] += 1
        report.bytes_by_modality[_modality(ext)] += size
    if len(report.samples) < examples:
        report.samples.append(_describe(sample, sizes))


def _describe(sample: RawSample, sizes: dict[str, int]) -> dict[str, Any]:
    """Key, field sizes, the inline modalities' values (a caption, shortened) and the metadata."""
    entry: dict[str, Any] = {"key": sample.key, "fields": {ext: sizes[ext] for ext in sorted(sizes)}}
    for name in sorted(sample.fields):
        modality = registry.for_field(name)
        if modality is not None and not modality.is_media and modality.name not in entry:
            entry[modality.name] = sample.read(name).decode("utf-8", errors="replace")[:200]
    if META_EXT in sample.fields:
        try:
            entry[META] = json.loads(sample.read(META_EXT))
        except (ValueError, UnicodeDecodeError):
            entry[META] = "(invalid JSON)"
    return entry


def split_folders(path: str | Path) -> list[Path]:
    """Subfolders holding shards, for a dataset root such as the starter set (one folder per split)."""
    root = Path(path)
    if not root.is_dir() or any(p.suffix == ".tar" for p in root.iterdir()):
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and any(q.suffix == ".tar" for q in p.iterdir()))
