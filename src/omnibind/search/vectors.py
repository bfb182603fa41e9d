"""The FAISS vector backend: one faiss index per modality (omnibind.search.ann), and its on-disk cache.

SQLite is the source of truth; this cache (one faiss file per modality plus a manifest naming the SQLite
generation it reflects) only saves rebuilding. It is written into a temporary folder, fsynced, and renamed
into place in one step, so a reader finds a complete cache or none; a stale or damaged one is rebuilt.
Nothing outside this module and ann.py knows the cache's layout (see omnibind.search.backend).
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

from omnibind.errors import InputError
from omnibind.fsutil import fsync_path
from omnibind.search.ann import APPROXIMATE_ABOVE, TARGET_RECALL, PartInfo, build_part, set_nprobe
from omnibind.search.backend import Parts

CACHE_PREFIX = "vectors-g"
TEMP_PREFIX = ".vectors-tmp-"
MANIFEST = "manifest.json"
CACHE_FORMAT = 1
OPTIONS = {"approximate_above": APPROXIMATE_ABOVE, "target_recall": TARGET_RECALL}


@dataclass
class FaissBackend:
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

    def describe(self) -> dict[str, PartInfo]:
        """How each modality is searched: exact, or IVF with its tuned nprobe and measured recall."""
        return dict(self.info)

    def save(self, folder: Path, before_publish: Callable[[], None] | None = None) -> None:
        """Write the cache of this generation atomically (temp folder, fsync, rename) and drop older ones."""
        save(self, folder, before_publish)

    @classmethod
    def build(cls, generation: int, embed_dim: int, parts: Parts, options: dict[str, Any]) -> FaissBackend:
        """Every modality's index from its (ids, vectors): exact, or IVF above `approximate_above` items."""
        settings = _options(options)
        index = cls(generation, embed_dim, options=settings)
        for modality, (ids, matrix) in sorted(parts.items()):
            index.parts[modality], index.info[modality] = build_part(ids, matrix, **settings)
        return index

    @classmethod
    def load(cls, folder: Path, generation: int, embed_dim: int) -> FaissBackend | None:
        """The cache of exactly this generation, or None when it is missing, incomplete or unreadable."""
        return load(folder, generation, embed_dim)

    @classmethod
    def saved_info(cls, folder: Path, generation: int, embed_dim: int,
                   options: dict[str, Any]) -> dict[str, PartInfo] | None:
        """The parts the cache of this generation describes, when it was built with these options."""
        manifest = read_manifest(folder, generation, embed_dim)
        if manifest is None or manifest.get("options") != _options(options):
            return None
        try:
            return {m: PartInfo(**info) for m, info in manifest["parts"].items()}
        except (TypeError, AttributeError, KeyError):
            return None

    @classmethod
    def prune(cls, folder: Path, generation: int) -> None:
        """Delete caches of other generations and temporary folders left by a killed writer."""
        remove_stale(folder, keep=cache_dir(folder, generation))


def _options(options: dict[str, Any]) -> dict[str, Any]:
    """The search options with their defaults; unknown ones are refused by name."""
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise InputError("search options", f"unknown option(s) {unknown}", f"options among {sorted(OPTIONS)}")
    return {**OPTIONS, **options}


def cache_dir(folder: Path, generation: int) -> Path:
    """Where the cache of one generation lives."""
    return folder / f"{CACHE_PREFIX}{generation}"


def save(index: FaissBackend, folder: Path, before_publish: Callable[[], None] | None = None) -> Path:
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


def load(folder: Path, generation: int, embed_dim: int) -> FaissBackend | None:
    """The cache of exactly this generation, or None when it is missing, incomplete or unreadable."""
    manifest = read_manifest(folder, generation, embed_dim)
    if manifest is None:
        return None
    try:
        index = FaissBackend(generation, embed_dim, options=dict(manifest["options"]))
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
