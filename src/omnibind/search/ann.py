"""Per-modality faiss indexes over unit vectors, searched by inner product (= cosine similarity).

Exact (flat) search by default; above a size threshold an IVF index whose `nprobe` is tuned on the data until
recall@10 against exact search reaches a target, and that measured recall is recorded with the index (or exact
search again, when the tuned IVF index would have to probe most of its cells).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import faiss
import numpy as np

EXACT, IVF = "exact", "ivf"
APPROXIMATE_ABOVE = 200_000  # items of one modality; an exact scan of 200k × 768 takes ~20 ms on one core
TARGET_RECALL = 0.95
RECALL_K = 10
RECALL_QUERIES = 512
SEED = 0


@dataclass(frozen=True)
class PartInfo:
    """How one modality's vectors are searched; for IVF, the tuned nprobe and its measured recall@10."""

    kind: str
    count: int
    nlist: int | None = None
    nprobe: int | None = None
    recall_at_10: float | None = None
    recall_queries: int | None = None

    def describe(self) -> str:
        """One line for the CLI: exact, or IVF with its parameters and measured recall."""
        if self.kind == EXACT and self.nprobe is not None:
            return (f"exact search over {self.count} vectors (an IVF index reached only recall@10 = "
                    f"{self.recall_at_10:.3f} probing {self.nprobe} of {self.nlist} cells; probing more is no "
                    f"faster than exact search)")
        if self.kind == EXACT:
            return f"exact search over {self.count} vectors"
        return (f"approximate search (IVF, nlist={self.nlist}, nprobe={self.nprobe}) over {self.count} vectors: "
                f"recall@10 = {self.recall_at_10:.3f} against exact search "
                f"({self.recall_queries} stored vectors as queries, each left out of its own results)")

    def to_dict(self) -> dict[str, object]:
        """Plain-JSON form for the cache manifest and /health."""
        return asdict(self)


def build_part(ids: np.ndarray, vectors: np.ndarray, approximate_above: int = APPROXIMATE_ABOVE,
               target_recall: float = TARGET_RECALL) -> tuple[faiss.Index, PartInfo]:
    """An exact index for up to `approximate_above` vectors, else an IVF index tuned to `target_recall`; when
    the IVF index misses that recall probing half of its cells (data without cluster structure, such as random
    vectors) it would be no faster than exact search, so the part stays exact and records why."""
    if len(ids) > approximate_above:
        index, info = build_ivf(ids, vectors, target_recall, max_nprobe=ivf_lists(len(ids)) // 2)
        if info.recall_at_10 >= target_recall:
            return index, info
        rejected = PartInfo(EXACT, len(ids), info.nlist, info.nprobe, info.recall_at_10, info.recall_queries)
        return _exact(ids, vectors), rejected
    return _exact(ids, vectors), PartInfo(EXACT, len(ids))


def _exact(ids: np.ndarray, vectors: np.ndarray) -> faiss.Index:
    index = faiss.IndexIDMap(faiss.IndexFlatIP(vectors.shape[1]))
    if len(ids):
        index.add_with_ids(vectors, ids)
    return index


def ivf_lists(count: int) -> int:
    """Number of IVF cells: about √N, with at least 39 training points per cell as faiss recommends."""
    return max(1, min(round(math.sqrt(count)), count // 39))


def build_ivf(ids: np.ndarray, vectors: np.ndarray, target_recall: float = TARGET_RECALL,
              nlist: int | None = None, max_nprobe: int | None = None) -> tuple[faiss.Index, PartInfo]:
    """IVF-Flat (inner product) trained on a sample of the vectors; nprobe is the smallest power of two (or
    `max_nprobe`, by default nlist) whose leave-one-out recall@10 on stored vectors reaches `target_recall`;
    the returned info states the recall reached, which is below the target only when `max_nprobe` stopped it."""
    count, dim = vectors.shape
    nlist = nlist or ivf_lists(count)
    limit = max(1, min(max_nprobe or nlist, nlist))
    rng = np.random.default_rng(SEED)
    train = vectors[np.sort(rng.choice(count, size=min(count, 64 * nlist), replace=False))]
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    index.cp.seed = SEED
    index.train(train)
    index.add_with_ids(vectors, ids)
    queries = rng.choice(count, size=min(count, RECALL_QUERIES), replace=False)
    positions = faiss.knn(vectors[queries], vectors, RECALL_K + 1, faiss.METRIC_INNER_PRODUCT)[1]
    truth = _leave_one_out(np.where(positions >= 0, ids[positions], -1), ids[queries])
    nprobe = 1
    while True:
        index.nprobe = nprobe
        recall = recall_at_k(_leave_one_out(index.search(vectors[queries], RECALL_K + 1)[1], ids[queries]), truth)
        if recall >= target_recall or nprobe >= limit:
            break
        nprobe = min(2 * nprobe, limit)
    return index, PartInfo(IVF, count, nlist, nprobe, recall, len(queries))


def _leave_one_out(neighbours: np.ndarray, own_ids: np.ndarray) -> list[set[int]]:
    """Each row's first k ids other than the query's own (and other than faiss's -1 padding)."""
    out = []
    for row, me in zip(neighbours, own_ids, strict=True):
        out.append(set([int(n) for n in row if n != me and n >= 0][:RECALL_K]))
    return out


def recall_at_k(found: list[set[int]], truth: list[set[int]]) -> float:
    """Mean fraction of each query's true top-k that the approximate search returned."""
    hits = sum(len(f & t) for f, t in zip(found, truth, strict=True))
    return hits / max(1, sum(len(t) for t in truth))


def set_nprobe(index: faiss.Index, info: PartInfo) -> None:
    """Apply the tuned nprobe to a loaded IVF index (faiss does not store it with the index)."""
    if info.kind == IVF and info.nprobe:
        faiss.extract_index_ivf(index).nprobe = info.nprobe
