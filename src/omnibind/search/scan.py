"""Find media files under a folder and describe one file (its hash, plus what its modality records about it:
an image's size, a sound's duration, ...). Which files count as media is the modality registry's answer."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from stat import S_ISREG

import omnibind.modalities as registry
from omnibind.search.store import MediaInfo, plain_meta


@dataclass(frozen=True)
class FoundFile:
    """A media file seen by the walk: absolute path, modality and the stat values change detection uses."""

    path: str
    modality: str
    size: int
    mtime_ns: int


def walk_media(root: Path, skip: Collection[Path] = ()) -> Iterator[FoundFile]:
    """Files of every registered media modality under `root`, in sorted order; hidden entries, `skip` folders
    and symbolic links to folders are not entered, and empty files are left out (they hold no media)."""
    skipped = {os.fspath(p.resolve()) for p in skip}
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and os.path.join(folder, d) not in skipped)
        for name in sorted(files):
            modality = registry.modality_of(name)
            if modality is None or name.startswith("."):
                continue
            path = os.path.join(folder, name)
            try:
                info = os.stat(path)
            except OSError:
                continue  # vanished or a dangling link
            if info.st_size > 0 and S_ISREG(info.st_mode):
                yield FoundFile(path, modality, info.st_size, info.st_mtime_ns)


def describe(found: FoundFile, data: bytes) -> MediaInfo:
    """Metadata of one file from its bytes: content hash plus what its modality's `describe()` reads from the
    header (errors name the file)."""
    meta = plain_meta(registry.get(found.modality).describe(data, found.path), found.path, found.modality)
    return MediaInfo(found.path, found.modality, found.size, found.mtime_ns, hashlib.sha256(data).hexdigest(),
                     meta)
