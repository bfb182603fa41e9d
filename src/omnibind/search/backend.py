"""The vector-backend seam: how an index's vectors are searched, saved and reloaded, behind one small
interface, so the store, the index, the updater and the service never touch a backend's internals.

A backend is built from one consistent snapshot of SQLite (per modality: item ids and unit vectors) and the
index's options, answers nearest-neighbour queries by inner product, describes how each modality is searched,
and may keep an on-disk cache of one SQLite generation. FAISS (omnibind.search.vectors) is the one
implementation today; another (pgvector, say) implements `BackendKind` and is returned by `kind()`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from omnibind.search.store import Store

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


def kind() -> BackendKind:
    """The backend this installation uses (FAISS)."""
    from omnibind.search.vectors import FaissBackend

    return FaissBackend


def build(store: Store, embed_dim: int, options: dict[str, Any]) -> VectorBackend:
    """A backend over the store's current vectors (one consistent snapshot)."""
    generation, parts = store.snapshot(embed_dim)
    return kind().build(generation, embed_dim, parts, options)


def load(folder: Path, generation: int, embed_dim: int) -> VectorBackend | None:
    """The saved backend of this generation, None when it must be rebuilt."""
    return kind().load(folder, generation, embed_dim)


def reuse(folder: Path, generation: int, embed_dim: int,
          options: dict[str, Any]) -> Mapping[str, SearchInfo] | None:
    """When the saved backend matches this generation and these options: drop older saved state and return its
    description (nothing to rebuild); else None."""
    backend = kind()
    info = backend.saved_info(folder, generation, embed_dim, options)
    if info is not None:
        backend.prune(folder, generation)
    return info
