"""The pgvector vector backend: nearest-neighbour search inside PostgreSQL, through one HNSW index per modality.

It implements the `VectorBackend` protocol (omnibind.search.backend) over a PgStore. Unlike FAISS it keeps no
cache to build, save or reload: PostgreSQL maintains the HNSW indexes on every committed insert, so a search
always sees the database's committed items, and `save` has nothing to write. A modality whose index is not
built yet (during the run that first adds it) is searched exactly, by a scan. `generation` and `describe()` are
those of the moment the backend was opened; the search index reopens it (a count) when the generation changes.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from omnibind.search.pgstore import PgStore

HNSW, EXACT = "hnsw", "exact"


@dataclass(frozen=True)
class PgInfo:
    """How one modality's vectors are searched in PostgreSQL: an HNSW index with its build and search settings,
    or exactly (a scan) while its index is not built yet."""

    kind: str
    count: int
    m: int | None = None
    ef_construction: int | None = None
    ef_search: int | None = None

    def describe(self) -> str:
        """One line for the CLI."""
        if self.kind == EXACT:
            return f"exact search in PostgreSQL over {self.count} vectors (its HNSW index is built at the end of a run)"
        return (f"approximate search (pgvector HNSW in PostgreSQL, m={self.m}, ef_construction="
                f"{self.ef_construction}, ef_search={self.ef_search}) over {self.count} vectors")

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form for /health."""
        return asdict(self)


class PgVectors:
    """The vectors of a PgStore, searched by inner product (= cosine similarity of unit vectors) in the database."""

    def __init__(self, store: PgStore, generation: int, embed_dim: int, counts: Mapping[str, int],
                 indexed: Collection[str]) -> None:
        """Search `store`'s items; `generation`, `counts` and the modalities with an HNSW index (`indexed`) are what
        it held when opened (for /health and the CLI)."""
        from omnibind.search.pgstore import HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH, HNSW_M

        self.store = store
        self.generation = generation
        self.embed_dim = embed_dim
        self.ef_search = HNSW_EF_SEARCH
        self.info = {modality: PgInfo(HNSW, count, HNSW_M, HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH)
                     if modality in indexed else PgInfo(EXACT, count) for modality, count in sorted(counts.items())}

    @property
    def count(self) -> int:
        """Vectors across all modalities (when opened)."""
        return sum(info.count for info in self.info.values())

    def search(self, query: np.ndarray, k: int, modalities: Collection[str] | None = None) -> list[tuple[int, float]]:
        """(item id, cosine score) of the k best items of the given modalities (all when None), best first: each
        modality's own HNSW index is searched, and their hits merged (as FAISS does per modality)."""
        query = np.ascontiguousarray(query, dtype=np.float32).reshape(self.embed_dim)
        wanted = self.info if modalities is None else modalities  # modalities new since opening: after a refresh
        hits: list[tuple[int, float]] = []
        for modality in sorted(set(wanted)):
            hits += self.store.nearest(query, k, modality, self.ef_search)
        return sorted(hits, key=lambda hit: -hit[1])[:k]

    def describe(self) -> dict[str, PgInfo]:
        """How each modality is searched (HNSW in the database, with its settings)."""
        return dict(self.info)

    def save(self, folder: Path, before_publish: Callable[[], None] | None = None) -> None:
        """Nothing to write: the vectors and their HNSW indexes live in the database, committed with the items."""
