"""An index folder opened for searching: item metadata from SQLite, vectors from the vector backend's cache
(rebuilt from SQLite when missing or stale), and a cheap refresh when `omnibind index` has updated the folder.
An index in PostgreSQL (a postgresql:// URL) is opened the same way and searches its vectors in the database."""

from __future__ import annotations

import threading
import time
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from omnibind.errors import InputError
from omnibind.search import backend
from omnibind.search.backend import VectorBackend
from omnibind.search.identity import ModelIdentity
from omnibind.search.lock import writer_lock
from omnibind.search.store import IndexStore, ItemRecord, open_store

REFRESH_SECONDS = 1.0


@dataclass(frozen=True)
class Hit:
    """One search result: the item's cosine similarity to the query and its metadata."""

    score: float
    item: ItemRecord

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form: score plus the item's fields."""
        return {"score": self.score, **self.item.to_dict()}


class SearchIndex:
    """Search an index folder (or a postgresql:// database) by vector; safe to share between threads."""

    def __init__(self, folder: str | Path) -> None:
        self.store: IndexStore = open_store(folder)
        self.folder = self.store.folder  # None for an index in a database server
        self.name = self.store.name  # how messages name it (a database URL without its password)
        recorded = self.store.meta("model")
        if recorded is None:
            raise InputError(self.name, "index records no model", "an index written by `omnibind index`")
        self.model = ModelIdentity.from_dict(recorded)
        self._lock = threading.Lock()
        self._checked = time.monotonic()
        self.roots: dict[str, Any] = self.store.meta("roots") or {}
        self.vectors = self._load_or_build(self.store.generation())

    @property
    def embed_dim(self) -> int:
        """Size of the stored vectors."""
        return self.model.embed_dim

    def _load_or_build(self, generation: int) -> VectorBackend:
        """The store's own vector search, the cache of this generation, or a rebuild from SQLite (saved when no
        writer holds the folder)."""
        cached = self._cached(generation)
        if cached is not None:
            return cached
        try:
            with writer_lock(self._cache_folder()) as idle:
                return self._rebuild(persist=idle)
        except OSError:  # a read-only index folder: search from memory
            return self._rebuild(persist=False)

    def _cached(self, generation: int) -> VectorBackend | None:
        """The store's own live vectors (a server store), else the backend's saved cache of this generation."""
        own = self.store.own_vectors(self.embed_dim)
        if own is not None:
            return own
        return backend.load(self._cache_folder(), generation, self.embed_dim)

    def _cache_folder(self) -> Path:
        """The index folder that holds the vector cache (every store without its own vector search has one)."""
        if self.folder is None:
            raise InputError(self.name, "has no vector search of its own and no folder for a vector cache",
                             "an index folder, or a server store that searches its own vectors")
        return self.folder

    def _rebuild(self, persist: bool) -> VectorBackend:
        built = backend.build(self.store, self.embed_dim, self.store.meta("ann") or {})
        if persist:
            built.save(self._cache_folder())
        return built

    def refresh(self, force: bool = False) -> bool:
        """Pick up a newer generation (checked at most once a second unless forced); True when it changed.

        While a writer is mid-run (no cache yet for the new generation) the old vectors stay in use, and
        `search` drops hits on items deleted since.
        """
        now = time.monotonic()
        if not force and now - self._checked < REFRESH_SECONDS:
            return False
        if not self._lock.acquire(blocking=False):
            return False  # another thread is refreshing
        try:
            self._checked = now
            self.roots = self.store.meta("roots") or {}
            generation = self.store.generation()
            if generation == self.vectors.generation:
                return False
            newer = self._cached(generation)
            if newer is None:
                try:
                    with writer_lock(self._cache_folder()) as idle:
                        if not idle:
                            return False
                        newer = self._rebuild(persist=True)
                except OSError:
                    newer = self._rebuild(persist=False)
            self.vectors = newer
            return True
        finally:
            self._lock.release()

    def search(self, query: np.ndarray, k: int = 10, modalities: Collection[str] | None = None) -> list[Hit]:
        """The k items most similar to a unit query vector, best first, optionally of some modalities only."""
        if query.shape[-1] != self.embed_dim:
            raise InputError("query", f"vector of size {query.shape[-1]}", f"size {self.embed_dim}")
        self.refresh()
        vectors = self.vectors
        ranked = vectors.search(query, k, modalities)
        records = self.store.items([item_id for item_id, _ in ranked])
        return [Hit(score, records[item_id]) for item_id, score in ranked if item_id in records]

    def item(self, item_id: int) -> ItemRecord | None:
        """Metadata of one item, None when no such item is indexed."""
        return self.store.item(item_id)

    def item_vector(self, item_id: int) -> np.ndarray | None:
        """One item's stored vector (a query for items like it), None when no such item is indexed."""
        return self.store.vector(item_id, self.embed_dim)

    def stats(self) -> dict[str, Any]:
        """Counts per modality and how each is searched (as the vector backend describes it)."""
        vectors = self.vectors
        counts = self.store.counts()
        return {
            "items": sum(counts.values()),
            "modalities": counts,
            "search": {m: info.to_dict() for m, info in vectors.describe().items()},
            "generation": vectors.generation,
        }

    def close(self) -> None:
        """Close the database connection."""
        self.store.close()
