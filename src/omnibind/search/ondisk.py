"""The on-disk vector backend: per modality, exact search up to a size threshold, above it an approximate index
chosen from a memory budget and tuned to a target recall (HNSW, or IVF-PQ with exact re-ranking:
omnibind.scale.ann), saved to disk and memory-mapped when loaded, so a service's RAM holds what the budget allows.

Chosen with `omnibind index ... --vector-index ondisk --memory-budget 2GB` (the index's "ann" options record
`backend: ondisk`). Like the FAISS backend's, its cache is one folder per SQLite generation, written under a
temporary name, fsynced and renamed into place: a reader finds a complete cache or none.
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
from omnibind.scale.ann import EF_CONSTRUCTION, KINDS, AnnIndex, AnnParams, check_ef_construction, from_arrays
from omnibind.search import vectors as faiss_cache
from omnibind.search.ann import APPROXIMATE_ABOVE, EXACT, TARGET_RECALL, PartInfo
from omnibind.search.backend import Parts, SearchInfo

NAME = "ondisk"
CACHE_PREFIX = "ondisk-g"
TEMP_PREFIX = ".ondisk-tmp-"
MANIFEST = "manifest.json"
CACHE_FORMAT = 1
OPTIONS: dict[str, Any] = {"backend": NAME, "approximate_above": APPROXIMATE_ABOVE, "target_recall": TARGET_RECALL,
                           "memory_budget": 4 * 2**30, "index_kind": "auto", "opq": False,
                           "ef_construction": EF_CONSTRUCTION}


@dataclass
class OnDiskBackend:
    """Per modality an exact faiss index or a tuned approximate one (AnnIndex), over one SQLite generation."""

    generation: int
    embed_dim: int
    parts: dict[str, faiss.Index | AnnIndex] = field(default_factory=dict)
    info: dict[str, SearchInfo] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def count(self) -> int:
        """Vectors across all modalities."""
        return sum(_count(part) for part in self.parts.values())

    def search(self, query: np.ndarray, k: int, modalities: Collection[str] | None = None) -> list[tuple[int, float]]:
        """(item id, cosine score) of the k best items of the given modalities (all when None), best first."""
        query = np.ascontiguousarray(query, dtype=np.float32).reshape(1, self.embed_dim)
        hits: list[tuple[int, float]] = []
        for modality, part in self.parts.items():
            if (modalities is None or modality in modalities) and _count(part):
                scores, ids = part.search(query, min(k, _count(part)))
                hits += [(int(i), float(s)) for s, i in zip(scores[0], ids[0], strict=True) if i >= 0]
        return sorted(hits, key=lambda hit: -hit[1])[:k]

    def describe(self) -> dict[str, SearchInfo]:
        """How each modality is searched: exact, or the approximate index with its tuned settings and recall."""
        return dict(self.info)

    def save(self, folder: Path, before_publish: Callable[[], None] | None = None) -> None:
        """Write the cache of this generation atomically (temp folder, fsync, rename) and drop other caches."""
        target = cache_dir(folder, self.generation)
        temp = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX, dir=folder))
        temp.chmod(0o755)
        try:
            manifest: dict[str, Any] = {"format": CACHE_FORMAT, "generation": self.generation,
                                        "embed_dim": self.embed_dim, "options": self.options, "parts": {}}
            for modality, part in self.parts.items():
                if isinstance(part, AnnIndex):
                    part.save(temp / modality)
                else:
                    faiss.write_index(part, str(temp / f"{modality}.faiss"))
                    fsync_path(temp / f"{modality}.faiss")
                manifest["parts"][modality] = self.info[modality].to_dict()
            (temp / MANIFEST).write_text(json.dumps(manifest, indent=2))
            fsync_path(temp / MANIFEST)
            fsync_path(temp)
            if before_publish is not None:
                before_publish()
            if target.exists():
                shutil.rmtree(target)
            os.replace(temp, target)
            fsync_path(folder)
        finally:
            shutil.rmtree(temp, ignore_errors=True)
        self.prune(folder, self.generation)

    @classmethod
    def build(cls, generation: int, embed_dim: int, parts: Parts, options: dict[str, Any]) -> OnDiskBackend:
        """Exact search for a modality of up to `approximate_above` items, else an approximate index chosen from
        `memory_budget` (bytes) and `index_kind` (HNSW built with `ef_construction`), tuned to `target_recall`."""
        settings = _options(options)
        backend = cls(generation, embed_dim, options=settings)
        for modality, (ids, matrix) in sorted(parts.items()):
            if len(ids) > settings["approximate_above"]:
                part = from_arrays(ids, matrix, int(settings["memory_budget"]), float(settings["target_recall"]),
                                   str(settings["index_kind"]), bool(settings["opq"]),
                                   int(settings["ef_construction"]))
                backend.parts[modality], backend.info[modality] = part, part.params
            else:
                exact = faiss.IndexIDMap(faiss.IndexFlatIP(embed_dim))
                if len(ids):
                    exact.add_with_ids(np.ascontiguousarray(matrix, dtype=np.float32), ids)
                backend.parts[modality], backend.info[modality] = exact, PartInfo(EXACT, len(ids))
        return backend

    @classmethod
    def load(cls, folder: Path, generation: int, embed_dim: int) -> OnDiskBackend | None:
        """The cache of exactly this generation, memory-mapped; None when missing, incomplete or unreadable."""
        manifest = read_manifest(folder, generation, embed_dim)
        if manifest is None:
            return None
        where = cache_dir(folder, generation)
        try:
            backend = cls(generation, embed_dim, options=dict(manifest["options"]))
            for modality, info in manifest["parts"].items():
                if info["kind"] == EXACT:
                    part: faiss.Index | AnnIndex = faiss.read_index(str(where / f"{modality}.faiss"),
                                                                    faiss.IO_FLAG_MMAP_IFC)
                    described: SearchInfo = PartInfo(**info)
                else:
                    part = AnnIndex.open(where / modality)
                    described = part.params
                if part is None or _count(part) != described.count or _dim(part) != embed_dim:
                    return None
                backend.parts[modality], backend.info[modality] = part, described
        except (OSError, ValueError, KeyError, TypeError, RuntimeError):
            return None  # faiss raises RuntimeError on a damaged file; InputError is a ValueError
        return backend

    @classmethod
    def saved_info(cls, folder: Path, generation: int, embed_dim: int,
                   options: dict[str, Any]) -> dict[str, SearchInfo] | None:
        """The parts the cache of this generation describes, when it was built with these options."""
        manifest = read_manifest(folder, generation, embed_dim)
        if manifest is None or manifest.get("options") != _options(options):
            return None
        try:
            return {m: PartInfo(**info) if info["kind"] == EXACT else AnnParams(**info)
                    for m, info in manifest["parts"].items()}
        except (TypeError, AttributeError, KeyError):
            return None

    @classmethod
    def prune(cls, folder: Path, generation: int) -> None:
        """Delete caches of other generations, every FAISS-backend cache (this backend replaced it) and
        temporary folders left by a killed writer."""
        keep = cache_dir(folder, generation)
        for path in folder.iterdir():
            if path != keep and path.is_dir() and path.name.startswith((CACHE_PREFIX, TEMP_PREFIX)):
                shutil.rmtree(path, ignore_errors=True)
        faiss_cache.remove_stale(folder)


def _count(part: faiss.Index | AnnIndex) -> int:
    return part.count if isinstance(part, AnnIndex) else int(part.ntotal)


def _dim(part: faiss.Index | AnnIndex) -> int:
    return part.params.dim if isinstance(part, AnnIndex) else int(part.d)


def _options(options: dict[str, Any]) -> dict[str, Any]:
    """The options with their defaults; an unknown option or index kind is refused by name."""
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise InputError("search options", f"unknown option(s) {unknown}", f"options among {sorted(OPTIONS)}")
    settings = {**OPTIONS, **options}
    if settings["index_kind"] not in KINDS:
        raise InputError("search options: index_kind", f"got {settings['index_kind']!r}", f"one of {KINDS}")
    if not isinstance(settings["memory_budget"], int) or settings["memory_budget"] <= 0:
        raise InputError("search options: memory_budget", f"got {settings['memory_budget']!r}", "a positive "
                         "number of bytes")
    check_ef_construction(settings["ef_construction"], "search options: ef_construction")
    return settings


def cache_dir(folder: Path, generation: int) -> Path:
    """Where the cache of one generation lives."""
    return folder / f"{CACHE_PREFIX}{generation}"


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
