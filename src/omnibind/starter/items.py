"""A planned starter item (labels known, media rendered on demand) and the split rules."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from omnibind.data.seeding import unit_interval

TRAIN, VAL, TEST = "train", "val", "test"
UNSEEN_STYLE, UNSEEN_SOUNDFONT, UNSEEN_VOICE = "test_unseen_style", "test_unseen_soundfont", "test_unseen_voice"
SPLITS = (TRAIN, VAL, TEST, UNSEEN_STYLE, UNSEEN_SOUNDFONT, UNSEEN_VOICE)
FRACTIONS = ((TRAIN, 0.8), (VAL, 0.1), (TEST, 0.1))

Media = Callable[[], tuple[str, bytes]]  # → (extension, bytes)


class Excluded(Exception):  # noqa: N818 (not an error: the item is left out and counted)
    """Raised by a renderer when an item turns out unusable (e.g. a silent note); counted in the summary
    under `reason` (short and general), with `detail` naming the case."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason} ({detail})" if detail else reason)
        self.reason, self.detail = reason, detail


@dataclass
class Item:
    """One example to be: its key, split, kind, caption, metadata (with sources) and media renderers."""

    key: str
    split: str
    kind: str
    text: str
    meta: dict[str, Any]
    image: Media | None = None
    audio: Media | None = None
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)

    def render(self) -> dict[str, bytes]:
        """The WebDataset fields of this item (media rendered now)."""
        import json

        fields: dict[str, bytes] = {"txt": self.text.encode("utf-8")}
        for media in (self.image, self.audio):
            if media is not None:
                ext, data = media()
                fields[ext] = data
        meta = {"key": self.key, "split": self.split, "kind": self.kind, "text": self.text, **self.meta,
                "sources": self.sources}
        fields["json"] = json.dumps(meta, ensure_ascii=False, sort_keys=True).encode("utf-8")
        return fields


def assign_split(seed: int, group: str) -> str:
    """train / val / test (80 / 10 / 10) for a group, fixed by the seed; items of one group stay together."""
    value = unit_interval(seed, "split", group)
    total = 0.0
    for name, fraction in FRACTIONS:
        total += fraction
        if value < total:
            return name
    return TEST


def slug(text: str) -> str:
    """A key-safe form: lower-case letters, digits and dashes."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def flac_bytes(wave: np.ndarray, rate: int) -> bytes:
    """Mono float waveform → 16-bit FLAC bytes."""
    import soundfile

    buffer = io.BytesIO()
    soundfile.write(buffer, np.clip(wave, -1.0, 1.0), rate, format="FLAC", subtype="PCM_16")
    return buffer.getvalue()


def png_bytes(image: Any) -> bytes:
    """A PIL image → PNG bytes (deterministic: no timestamps are written)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False, compress_level=6)
    return buffer.getvalue()
