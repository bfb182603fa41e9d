"""The searchable vectors of an index, and their on-disk cache.

SQLite is the source of truth; this cache (one faiss file per modality plus a manifest naming the SQLite
generation it reflects) only saves rebuilding. It is written into a temporary folder, fsynced, and renamed
into place in one step, so a reader finds a complete cache or none; a stale or damaged one is rebuilt.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from omnibind.fsutil import fsync_path
from omnibind.search.ann import APPROXIMATE_ABOVE, TARGET_RECALL, PartInfo, build_part, set_nprobe
from omnibind.search.store import Store

CACHE_PREFIX = "vectors-g"
TEMP_PREFIX = ".vectors-tmp-"
MANIFEST = "manifest.json"
CACHE_FORMAT = 1


@dataclass
class VectorIndex:
    """One faiss index per modality over the items of one SQLite generation."""

    generation: int
    embed_dim: int
    parts: dict[str, faiss.Index] = field(default_factory=dict)
    info: dict[str, PartInfo] = field(default_factory=dict)
    options: dict[str, float] = field(default_factory=dict)

    @property
    def count(self) -> int:
        """Vectors across all modalities."""
        return sum(part.ntotal for part in self.parts.values())

    def search(self, query: np.ndarray, k: int, modalities: Collection[str] | None = None) -> list[tuple[int, float]]:
        """(item id, cosine score) of the k best items of the given modalities (all when None), best first."""
        query = np.ascontiguousarray(query, dtype=np.float32).reshape(1, self.embed_dim)
        hits: list[tuple[int, float]] = []
        for modality, part in self.parts.items():
            if (modalities is None or modality in modalities) and part.ntotal:
                scores, ids = part.search(query, min(k, part.ntotal))
                hits += [(int(i), float(s)) for s, i in zip(scores[0], ids[0], strict=True) if i >= 0]
        return sorted(hits, key=lambda hit: -hit[1])[:k]


def build(store: Store, embed_dim: int, approximate_above: int = APPROXIMATE_ABOVE,
          target_recall: float = TARGET_RECALL) -> VectorIndex:
    """Build every modality's index from the vectors in SQLite (one consistent snapshot)."""
    generation, parts = store.snapshot(embed_dim)
    options = {"approximate_above": approximate_above, "target_recall": target_recall}
    index = VectorIndex(generation, embed_dim, options=options)
    for modality, (ids, matrix) in sorted(parts.items()):
        index.parts[modality], index.info[modality] = build_part(ids, matrix, approximate_above, target_recall)
    return index


def cache_dir(folder: Path, generation: int) -> Path:
    """Where the cache of one generation lives."""
    return folder / f"{CACHE_PREFIX}{generation}"


def save(index: VectorIndex, folder: Path, before_publish: Callable[[], None] | None = None) -> Path:
    """Write the cache for `index.generation` atomically (temp folder, fsync, rename) and drop older ones.

    `before_publish` runs after the files are written and before the rename (a hook for crash tests).
    """
    target = cache_dir(folder, index.generation)
    temp = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX, dir=folder))
    temp.chmod(0o755)
    try:
        for modality, part in index.parts.items():
            faiss.write_index(part, str(temp / f"{modality}.faiss"))
        manifest = {"format": CACHE_FORMAT, "generation": index.generation, "embed_dim": index.embed_dim,
                    "options": index.options, "parts": {m: info.to_dict() for m, info in index.info.items()}}
        (temp / MANIFEST).write_text(json.dumps(manifest, indent=2))
        for file in temp.iterdir():
            fsync_path(file)
        fsync_path(temp)
        if before_publish is not None:
            before_publish()
        if target.exists():
            shutil.rmtree(target)
        os.replace(temp, target)
        fsync_path(folder)
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    remove_stale(folder, keep=target)
    return target


def read_manifest(folder: Path, generation: int, embed_dim: int) -> dict[str, Any] | None:
    """The manifest of this generation's cache, None when there is no complete cache for it."""
    try:
        manifest = json.loads((cache_dir(folder, generation) / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict):
        return None
    key = (manifest.get("format"), manifest.get("generation"), manifest.get("embed_dim"))
    return manifest if key == (CACHE_FORMAT, generation, embed_dim) else None


def load(folder: Path, generation: int, embed_dim: int) -> VectorIndex | None:
    """The cache of exactly this generation, or None when it is missing, incomplete or unreadable."""
    manifest = read_manifest(folder, generation, embed_dim)
    if manifest is None:
        return None
    try:
        index = VectorIndex(generation, embed_dim, options=dict(manifest["options"]))
        for modality, info in manifest["parts"].items():
            part = faiss.read_index(str(cache_dir(folder, generation) / f"{modality}.faiss"))
            part_info = PartInfo(**info)
            if part.d != embed_dim or part.ntotal != part_info.count:
                return None
            set_nprobe(part, part_info)
            index.parts[modality], index.info[modality] = part, part_info
    except (OSError, ValueError, KeyError, TypeError, RuntimeError):
        return None  # faiss raises RuntimeError on a damaged file
    return index


def remove_stale(folder: Path, keep: Path | None = None) -> None:
    """Delete caches of other generations and temporary folders left by a killed writer."""
    for path in folder.iterdir():
        if path != keep and path.is_dir() and path.name.startswith((CACHE_PREFIX, TEMP_PREFIX)):
            shutil.rmtree(path, ignore_errors=True)
