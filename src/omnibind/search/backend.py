"""The vector-backend seam: how an index's vectors are searched, saved and reloaded, behind one small
interface, so the store, the index, the updater and the service never touch a backend's internals.

A backend is built from one consistent snapshot of SQLite (per modality: item ids and unit vectors) and the
index's options, answers nearest-neighbour queries by inner product, describes how each modality is searched,
and may keep an on-disk cache of one SQLite generation. FAISS (omnibind.search.vectors) is the one
`BackendKind` today; another implements `BackendKind` and is returned by `kind()`. A server store searches its
own vectors instead (`IndexStore.own_vectors`: pgvector in PostgreSQL, omnibind.search.pgvectors), a
`VectorBackend` with nothing to build or save.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from omnibind.search.store import IndexStore

Parts = dict[str, tuple[np.ndarray, np.ndarray]]
"""Per modality: item ids, int64 (N,), and their unit vectors, float32 (N, dim)."""


@runtime_checkable
class SearchInfo(Protocol):
    """How one modality's vectors are searched (its kind, e.g. "exact", and its size), for /health and the CLI."""

    @property
    def kind(self) -> str: ...

    @property
    def count(self) -> int: ...

    def describe(self) -> str:
        """One line for the CLI."""
        ...

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (its `kind` and `count` plus the backend's own parameters)."""
        ...


@runtime_checkable
class VectorBackend(Protocol):
    """The searchable vectors of one SQLite generation."""

    generation: int

    @property
    def count(self) -> int:
        """Vectors across all modalities."""
        ...

    def search(self, query: np.ndarray, k: int, modalities: Collection[str] | None = None) -> list[tuple[int, float]]:
        """(item id, cosine score) of the k best items of the given modalities (all when None), best first."""
        ...

    def describe(self) -> Mapping[str, SearchInfo]:
        """How each modality is searched."""
        ...

    def save(self, folder: Path, before_publish: Callable[[], None] | None = None) -> None:
        """Persist into the index folder atomically; `before_publish` runs just before the cache becomes
        visible (a hook for crash tests)."""
        ...


class BackendKind(Protocol):
    """The class side of a backend: build one, load a saved one, or read what a saved one holds."""

    def build(self, generation: int, embed_dim: int, parts: Parts, options: dict[str, Any]) -> VectorBackend:
        """A backend over these vectors; `options` are the index's search options (e.g. when to go approximate)."""
        ...

    def load(self, folder: Path, generation: int, embed_dim: int) -> VectorBackend | None:
        """The saved backend of exactly this generation, None when missing, incomplete or unreadable."""
        ...

    def saved_info(self, folder: Path, generation: int, embed_dim: int,
                   options: dict[str, Any]) -> Mapping[str, SearchInfo] | None:
        """What the saved backend of this generation describes, when one built with these options exists
        (read without loading its vectors); else None."""
        ...

    def prune(self, folder: Path, generation: int) -> None:
        """Delete saved state of other generations and leftovers of a killed writer."""
        ...


BACKEND_OPTION = "backend"
"""The search option that names the backend kind: absent for FAISS, "ondisk" for omnibind.search.ondisk."""


def kind(options: Mapping[str, Any] | None = None) -> BackendKind:
    """The backend the index's options name: FAISS by default, "ondisk" for memory-mapped approximate indexes
    chosen from a memory budget (omnibind.search.ondisk)."""
    from omnibind.search.vectors import FaissBackend

    name = (options or {}).get(BACKEND_OPTION)
    if name is None:
        return FaissBackend
    from omnibind.search.ondisk import NAME, OnDiskBackend

    if name != NAME:
        from omnibind.errors import InputError

        raise InputError("search options: backend", f"got {name!r}", f"absent (FAISS) or {NAME!r}")
    return OnDiskBackend


def build(store: IndexStore, embed_dim: int, options: dict[str, Any]) -> VectorBackend:
    """A backend over the store's current vectors (one consistent snapshot)."""
    generation, parts = store.snapshot(embed_dim)
    return kind(options).build(generation, embed_dim, parts, options)


def load(folder: Path, generation: int, embed_dim: int) -> VectorBackend | None:
    """The saved backend of this generation (whichever kind saved it), None when it must be rebuilt."""
    from omnibind.search.ondisk import NAME

    for backend in (kind(), kind({BACKEND_OPTION: NAME})):
        loaded = backend.load(folder, generation, embed_dim)
        if loaded is not None:
            return loaded
    return None


def reuse(folder: Path, generation: int, embed_dim: int,
          options: dict[str, Any]) -> Mapping[str, SearchInfo] | None:
    """When the saved backend matches this generation and these options: drop older saved state and return its
    description (nothing to rebuild); else None."""
    backend = kind(options)
    info = backend.saved_info(folder, generation, embed_dim, options)
    if info is not None:
        backend.prune(folder, generation)
    return info
