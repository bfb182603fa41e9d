"""Samples the loader could not use: one reason per skip, counted, with a few examples for the report."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Reasons, worded as a person would read them in a report. A modality's own reasons come from
# `Modality.skip_reason`; these name the built-in modalities' (for tests and readers of reports).
IMAGE_UNDECODABLE = "image undecodable"
AUDIO_UNDECODABLE = "audio undecodable"
AUDIO_TRUNCATED = "audio truncated"
TEXT_NOT_UTF8 = "text not UTF-8"
TEXT_INVALID = "text not tokenizable"
NO_MODALITY = "no usable modality"
FILE_MISSING = "file missing"
MANIFEST_LINE_INVALID = "manifest line invalid"
SHARD_TRUNCATED = "shard truncated"
SHARD_UNREADABLE = "shard unreadable"
MEMBER_UNNAMED = "tar member without extension"

MAX_EXAMPLES = 3  # examples kept per reason: enough to find the files, small enough to send with every batch
MAX_DETAIL = 200  # characters of a decoder's message kept per example


class SampleSkip(Exception):  # noqa: N818 (a signal, not an error: the sample is skipped and counted)
    """Raised while reading or decoding one sample: it is skipped and counted under `reason`."""

    def __init__(self, reason: str, key: str, detail: str = "") -> None:
        super().__init__(f"{key}: {reason}" + (f" ({detail})" if detail else ""))
        self.reason = reason
        self.key = key
        self.detail = detail


@dataclass
class SkipStats:
    """Counts of skipped samples per reason plus a few `key: detail` examples; merges across workers."""

    counts: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)
    muted: bool = field(default=False, repr=False, compare=False)  # while a resumed stream fast-forwards

    def add(self, reason: str, key: str, detail: str = "") -> None:
        """Count one skip (ignored while muted: a resumed stream replays samples counted before)."""
        if self.muted:
            return
        self.counts[reason] = self.counts.get(reason, 0) + 1
        kept = self.examples.setdefault(reason, [])
        if len(kept) < MAX_EXAMPLES:
            kept.append(f"{key}: {detail[:MAX_DETAIL]}" if detail else key)

    def add_skip(self, skip: SampleSkip) -> None:
        """Count a SampleSkip."""
        self.add(skip.reason, skip.key, skip.detail)

    @property
    def total(self) -> int:
        """Samples skipped for any reason."""
        return sum(self.counts.values())

    def merged(self, *others: SkipStats) -> SkipStats:
        """A new SkipStats with this one's counts plus the others' (examples capped per reason)."""
        out = SkipStats()
        for stats in (self, *others):
            for reason, count in stats.counts.items():
                out.counts[reason] = out.counts.get(reason, 0) + count
                kept = out.examples.setdefault(reason, [])
                kept.extend(stats.examples.get(reason, [])[: MAX_EXAMPLES - len(kept)])
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (for loader state and worker messages)."""
        return {"counts": dict(self.counts), "examples": {k: list(v) for k, v in self.examples.items()}}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> SkipStats:
        """Inverse of to_dict; None gives empty stats."""
        if not data:
            return cls()
        return cls(dict(data.get("counts", {})), {k: list(v) for k, v in data.get("examples", {}).items()})

    def __str__(self) -> str:
        if not self.counts:
            return "no samples skipped"
        lines = [f"skipped {self.total} sample(s):"]
        for reason in sorted(self.counts, key=lambda r: (-self.counts[r], r)):
            example = "; ".join(self.examples.get(reason, []))
            lines.append(f"  {reason}: {self.counts[reason]}" + (f"  (e.g. {example})" if example else ""))
        return "\n".join(lines)
