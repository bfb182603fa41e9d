"""Approximate indexes for collections past RAM: FAISS IVF-PQ (optionally OPQ-rotated) with exact re-ranking,
or HNSW, chosen from a memory budget and tuned to a target recall@10, saved to disk and memory-mapped.

The choice follows autofaiss (which needs numpy < 2 and so cannot be installed beside omnibind's numpy 2):
HNSW when its graph and full vectors fit the budget (the fastest at a given recall, but every vector must stay
in memory), else IVF-PQ with the largest product-quantiser code that fits, about √N cells. IVF-PQ keeps only its
codes (`pq_m` bytes per vector) in RAM; the full float32 vectors stay in a memory-mapped file from which the
best `k × k_factor` PQ candidates are re-ranked exactly, so recall is not capped by quantisation. After the
build, `nprobe` and `k_factor` (IVF-PQ) or `efSearch` (HNSW) are raised until recall@10 against exact search,
measured with the last 512 vectors (a tenth of small sets) held out of the build as fresh queries and added
after, reaches the target; the recall reached is kept with the index.

On disk (one folder): `index.faiss` (HNSW: graph and vectors; IVF-PQ: centroids and codebooks, with
`index.ivfdata`, FAISS on-disk inverted lists, and `vectors.f32`, the full vectors row-major), `ids.npy` (row →
item id) and `params.json`; `AnnIndex.open` maps all of them.
"""

from __future__ import annotations

import json
import math
import mmap
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

import faiss as _faiss
import numpy as np

from omnibind.errors import InputError
from omnibind.fsutil import fsync_path

faiss: Any = _faiss  # faiss' bundled type hints miss much of its SWIG API (HNSW settings, on-disk lists)

HNSW, IVFPQ = "hnsw", "ivfpq"
KINDS = ("auto", HNSW, IVFPQ)
RECALL_K = 10
TUNE_QUERIES = 512
HNSW_M, EF_CONSTRUCTION = 32, 80  # at 40, recall flattened near 0.9 on 1M clustered 768-d vectors (docs/scale.md)
EF_CONSTRUCTION_RANGE = (HNSW_M, 4096)  # below M a node cannot fill its links; above, only build time grows
EF_SEARCH = (16, 32, 64, 128, 256, 512, 1024)
K_FACTORS = (2, 4, 8, 16, 32, 64)
TRAIN_PER_CELL, MIN_TRAIN = 64, 65_536
MIN_IVFPQ = 1024
SEED = 0
INDEX_FILE, IVFDATA_FILE, VECTORS_FILE, IDS_FILE, PARAMS_FILE = (
    "index.faiss", "index.ivfdata", "vectors.f32", "ids.npy", "params.json")
CHUNK = 65_536
RERANK_FLOATS = 16 * 2**20  # floats gathered at once for re-ranking (64 MiB)
# Re-ranking vectors read from a memory-mapped file by this many threads at once: past RAM each candidate's page
# faults in from the disk, and one thread would wait for those reads one after another.
READ_THREADS = 16


@dataclass(frozen=True)
class AnnParams:
    """An index's structure (kind, cells, code size, graph degree), its tuned search settings, the recall@10
    they reached and what it costs per vector in RAM and on disk."""

    kind: str
    count: int
    dim: int
    nlist: int | None = None
    pq_m: int | None = None
    opq: bool = False
    hnsw_m: int | None = None
    ef_construction: int | None = None
    nprobe: int | None = None
    k_factor: int | None = None
    ef_search: int | None = None
    recall_at_10: float | None = None
    recall_queries: int | None = None
    target_recall: float | None = None
    tuned_on: str = "vectors held out of the build"
    memory_bytes: int = 0
    disk_bytes: int = 0

    def factory(self) -> str:
        """The faiss index_factory string of this structure."""
        if self.kind == HNSW:
            return f"HNSW{self.hnsw_m},Flat"
        rotation = f"OPQ{self.pq_m}," if self.opq else ""
        return f"{rotation}IVF{self.nlist},PQ{self.pq_m}x8"

    def describe(self) -> str:
        """One line for the CLI: structure, search settings and measured recall."""
        if self.kind == HNSW:
            settings = f"HNSW (M={self.hnsw_m}, efConstruction={self.ef_construction}, efSearch={self.ef_search})"
        else:
            settings = (f"{'OPQ + ' if self.opq else ''}IVF-PQ (nlist={self.nlist}, {self.pq_m}-byte codes, "
                        f"nprobe={self.nprobe}, exact re-ranking of {self.k_factor}×k candidates)")
        recall = "" if self.recall_at_10 is None else (
            f": recall@10 = {self.recall_at_10:.3f} against exact search ({self.recall_queries} {self.tuned_on} "
            f"as queries)")
        return (f"approximate search, {settings}, over {self.count} vectors{recall}; "
                f"{self.memory_bytes / max(1, self.count):.0f} B/vector in RAM, "
                f"{self.disk_bytes / max(1, self.count):.0f} B/vector on disk")

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (params.json, /health)."""
        return asdict(self)


def parse_size(text: str | int) -> int:
    """Bytes from '4GB', '512MiB', '2.5G' or a plain number of bytes; an error names the value."""
    if isinstance(text, int):
        return text
    units = {"": 1, "B": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
    value = str(text).strip().upper().removesuffix("IB").removesuffix("B")
    number, unit = (value[:-1], value[-1]) if value and value[-1] in units else (value, "")
    try:
        size = float(number) * units[unit]
    except ValueError:
        raise InputError("memory budget", f"got {text!r}", "a size such as 512MB, 4GB or 2.5G") from None
    if size <= 0:
        raise InputError("memory budget", f"got {text!r}", "a positive size")
    return int(size)


def ivf_cells(count: int) -> int:
    """IVF cells: the power of two nearest √N, with at least 39 training points per cell as faiss wants."""
    return max(1, min(int(2 ** round(math.log2(max(1.0, math.sqrt(count))))), count // 39))


def pq_sizes(dim: int) -> list[int]:
    """Code sizes (bytes per vector) to try, largest first: 8 down to 32 dimensions per byte, dividing dim."""
    return [dim // per for per in (8, 16, 32) if dim % per == 0 and dim // per >= 1] or [1]


def hnsw_memory(count: int, dim: int, m: int = HNSW_M) -> int:
    """RAM of an HNSW index: full vectors, level-0 links (2M), upper levels (about M/ln M per vector) and ids."""
    return int(count * (4 * dim + 4 * (2 * m + m / math.log(m)) + 8))


def ivfpq_memory(count: int, dim: int, nlist: int, pq_m: int, opq: bool = False) -> int:
    """RAM of an IVF-PQ index: codes and ids per vector, centroids, PQ codebooks and the OPQ rotation."""
    return int(count * (pq_m + 8) + 4 * dim * (nlist + 256) + (4 * dim * dim if opq else 0))


def disk_bytes(params: AnnParams) -> int:
    """Bytes on disk: HNSW's graph and vectors, or IVF-PQ's codes with the full vectors beside them for
    re-ranking; and the ids."""
    if params.kind == HNSW:
        return hnsw_memory(params.count, params.dim, params.hnsw_m or HNSW_M) + 8 * params.count
    extra = params.count * (4 * params.dim + 8)
    return ivfpq_memory(params.count, params.dim, params.nlist or 1, params.pq_m or 1, params.opq) + extra


def check_ef_construction(value: object, field: str = "efConstruction") -> int:
    """HNSW's efConstruction (candidates kept while linking each added vector), refused under the name `field`
    (the option or setting it came from) outside EF_CONSTRUCTION_RANGE: too few leave links unfilled, too many
    only slow the build."""
    low, high = EF_CONSTRUCTION_RANGE
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InputError(field, f"got {value!r}", f"an integer from {low} to {high}")
    return value


def choose(count: int, dim: int, memory_budget: int, kind: str = "auto", opq: bool = False,
           ef_construction: int = EF_CONSTRUCTION) -> AnnParams:
    """The structure for `count` vectors of `dim` within `memory_budget` bytes of RAM: HNSW when it fits (or is
    asked for, built with `ef_construction`), else IVF-PQ with the largest code that fits; an error says the
    smallest budget that would do."""
    check_ef_construction(ef_construction)
    if kind not in KINDS:
        raise InputError("index kind", f"got {kind!r}", f"one of {', '.join(KINDS)}")
    if count < 1:
        raise InputError("vectors", "none to index", "at least one vector")
    hnsw = AnnParams(HNSW, count, dim, hnsw_m=HNSW_M, ef_construction=ef_construction,
                     memory_bytes=hnsw_memory(count, dim))
    if kind == HNSW or (kind == "auto" and hnsw.memory_bytes <= memory_budget and not opq):
        return replace(hnsw, disk_bytes=disk_bytes(hnsw))
    if count < MIN_IVFPQ:
        raise InputError("index kind", f"IVF-PQ over {count} vectors", f"at least {MIN_IVFPQ} vectors to train its "
                         "256-centroid product quantiser (or --kind hnsw / auto)")
    nlist = ivf_cells(count)
    options = [AnnParams(IVFPQ, count, dim, nlist=nlist, pq_m=m, opq=opq,
                         memory_bytes=ivfpq_memory(count, dim, nlist, m, opq)) for m in pq_sizes(dim)]
    fitting = [p for p in options if p.memory_bytes <= memory_budget]
    if not fitting and kind == "auto":
        raise InputError("memory budget", f"{memory_budget / 2**20:.0f} MiB is too small for {count} vectors of "
                         f"dimension {dim}", f"at least {options[-1].memory_bytes / 2**20:.0f} MiB")
    chosen = fitting[0] if fitting else options[-1]
    return replace(chosen, disk_bytes=disk_bytes(chosen))


def train(params: AnnParams, sample: np.ndarray) -> faiss.Index:
    """An empty index of this structure, trained on `sample` (IVF-PQ; HNSW needs no training)."""
    index = faiss.index_factory(params.dim, params.factory(), faiss.METRIC_INNER_PRODUCT)
    if params.kind == HNSW:
        index.hnsw.efConstruction = params.ef_construction or EF_CONSTRUCTION
        return index
    ivf = faiss.downcast_index(faiss.extract_index_ivf(index))
    ivf.cp.seed = SEED
    ivf.pq.cp.seed = SEED
    ivf.do_polysemous_training = False  # hamming pre-filtering is unused here, and its training takes minutes
    index.train(np.ascontiguousarray(sample, dtype=np.float32))
    return index


def training_size(params: AnnParams) -> int:
    """Vectors to train on: 64 per IVF cell and at least 65,536 for the PQ codebooks (all, when fewer)."""
    return 0 if params.kind == HNSW else min(params.count, max(TRAIN_PER_CELL * (params.nlist or 1), MIN_TRAIN))


def sample_rows(count: int, size: int, seed: int = SEED) -> np.ndarray:
    """Sorted distinct row numbers, drawn at random."""
    return np.sort(np.random.default_rng(seed).choice(count, size=min(count, size), replace=False))


class AnnIndex:
    """A trained faiss index whose rows map to item ids, with the full vectors (in memory or memory-mapped)
    for exact re-ranking and ground truth."""

    def __init__(self, params: AnnParams, index: faiss.Index, vectors: np.ndarray, ids: np.ndarray) -> None:
        self.params, self.index, self.vectors, self.ids = params, index, vectors, ids

    @property
    def count(self) -> int:
        """Indexed vectors."""
        return int(self.index.ntotal)

    def search(self, queries: np.ndarray, k: int, nprobe: int | None = None, k_factor: int | None = None,
               ef_search: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(scores, item ids) of the k best items per query row, best first (-1 padding), with the tuned
        settings unless others are given."""
        scores, rows = self.search_rows(queries, k, nprobe, k_factor, ef_search)
        return scores, np.where(rows >= 0, self.ids[np.maximum(rows, 0)], -1)

    def search_rows(self, queries: np.ndarray, k: int, nprobe: int | None = None, k_factor: int | None = None,
                    ef_search: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Like `search`, in row numbers."""
        queries = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.params.dim)
        p = self.params
        k = min(k, self.count)
        if p.kind == HNSW:
            settings = faiss.SearchParametersHNSW(efSearch=max(k, ef_search or p.ef_search or EF_SEARCH[2]))
            scores, rows = self.index.search(queries, k, params=settings)
            return scores, rows
        factor = k_factor or p.k_factor or K_FACTORS[-1]
        settings = faiss.SearchParametersIVF(nprobe=nprobe or p.nprobe or 1)
        candidates = self.index.search(queries, min(self.count, k * factor), params=settings)[1]
        return rerank(self.vectors, queries, candidates, k)

    def save(self, folder: Path, write_vectors: bool = True) -> None:
        """Write the index into `folder` (IVF lists as FAISS on-disk lists), the vectors (unless already written
        there) and the ids, each fsynced; params.json last, so a folder with it is complete."""
        folder.mkdir(parents=True, exist_ok=True)
        index = self.index
        if self.params.kind == IVFPQ:
            index = faiss.clone_index(self.index)
            ivf = faiss.extract_index_ivf(index)
            on_disk = faiss.OnDiskInvertedLists(ivf.nlist, ivf.code_size, str(folder / IVFDATA_FILE))
            lists = faiss.InvertedListsPtrVector()
            lists.push_back(faiss.extract_index_ivf(self.index).invlists)
            on_disk.merge_from_multiple(lists.data(), lists.size())
            ivf.replace_invlists(on_disk, True)
            on_disk.this.disown()
        faiss.write_index(index, str(folder / INDEX_FILE))
        del index
        if write_vectors and self.params.kind == IVFPQ:  # HNSW keeps its vectors inside its index file
            write_array(folder / VECTORS_FILE, self.vectors)
        np.save(folder / IDS_FILE, np.asarray(self.ids, dtype=np.int64))
        for name in os.listdir(folder):
            fsync_path(folder / name)
        (folder / PARAMS_FILE).write_text(json.dumps(self.params.to_dict(), indent=2) + "\n")
        fsync_path(folder / PARAMS_FILE)
        fsync_path(folder)

    @classmethod
    def open(cls, folder: Path) -> AnnIndex:
        """The index in `folder`, memory-mapped (IVF lists, HNSW vectors, full vectors, ids); an error names a
        missing or inconsistent file."""
        try:
            params = AnnParams(**json.loads((folder / PARAMS_FILE).read_text()))
        except (OSError, ValueError, TypeError) as err:
            raise InputError(folder / PARAMS_FILE, f"unreadable ({err})",
                             "an index folder written by omnibind") from err
        # IVF lists are FAISS on-disk lists (mapped by faiss, found beside the index file); HNSW's vectors are
        # mapped with the flat-codes flag (the two flags cannot be combined: mapping bypasses the file path).
        flags = faiss.IO_FLAG_ONDISK_SAME_DIR if params.kind == IVFPQ else faiss.IO_FLAG_MMAP_IFC
        try:
            index = faiss.read_index(str(folder / INDEX_FILE), flags)
        except RuntimeError as err:
            raise InputError(folder / INDEX_FILE, f"unreadable ({str(err).splitlines()[0]})",
                             "a faiss index written by omnibind") from err
        if params.kind == HNSW:  # the graph's own (mapped) storage: no second copy of the vectors
            storage = faiss.downcast_index(index.storage)
            vectors = faiss.rev_swig_ptr(storage.get_xb(), index.ntotal * index.d) if index.ntotal else \
                np.zeros(0, np.float32)
        else:
            vectors = random_access(np.memmap(folder / VECTORS_FILE, dtype=np.float32, mode="r"))
        ids = np.load(folder / IDS_FILE, mmap_mode="r")
        if index.ntotal != params.count or index.d != params.dim or len(ids) != params.count or \
                vectors.size != params.count * params.dim:
            raise InputError(folder, f"holds {index.ntotal} indexed, {len(ids)} ids and {vectors.size} floats",
                             f"{params.count} vectors of dimension {params.dim}, as params.json says")
        return cls(params, index, vectors.reshape(params.count, params.dim), ids)


def write_array(path: Path, vectors: np.ndarray) -> None:
    """Raw float32 rows to `path`, a chunk at a time (memory stays bounded for memory-mapped input)."""
    with open(path, "wb") as handle:
        for start in range(0, len(vectors), CHUNK):
            handle.write(np.ascontiguousarray(vectors[start : start + CHUNK], dtype=np.float32).tobytes())


def random_access(mapped: np.memmap) -> np.memmap:
    """The mapping told that its pages are read at random (MADV_RANDOM): past RAM each re-ranked candidate then
    faults in its own page, where the default read-around fetches the disk's whole readahead window (8 MiB on
    this machine's disk) per candidate."""
    handle = getattr(mapped, "_mmap", None)
    if handle is not None and hasattr(mmap, "MADV_RANDOM"):
        handle.madvise(mmap.MADV_RANDOM)
    return mapped


@cache
def _readers() -> ThreadPoolExecutor:
    """The threads that read re-ranking vectors (shared by every index and request of the process)."""
    return ThreadPoolExecutor(max_workers=READ_THREADS, thread_name_prefix="omnibind-rerank-read")


def gather_rows(vectors: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """`vectors[rows]` as float32; from a memory-mapped file, READ_THREADS slices at once (numpy copies without
    the GIL), so that the disk reads of vectors not in memory overlap instead of queueing one by one."""
    flat = rows.reshape(-1)
    if not isinstance(vectors, np.memmap) or flat.size < 2 * READ_THREADS:
        return np.asarray(vectors[rows], dtype=np.float32)
    out = np.empty((flat.size, vectors.shape[1]), dtype=np.float32)

    def read(part: np.ndarray) -> None:
        out[part] = vectors[flat[part]]

    list(_readers().map(read, np.array_split(np.arange(flat.size), READ_THREADS)))
    return out.reshape(*rows.shape, vectors.shape[1])


def rerank(vectors: np.ndarray, queries: np.ndarray, candidates: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact inner products of each query with its candidate rows (read from `vectors`, a block of queries at a
    time so memory stays bounded); the k best, best first, -1 where fewer candidates."""
    scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
    rows = np.full((len(queries), k), -1, dtype=np.int64)
    block = max(1, RERANK_FLOATS // max(1, candidates.shape[1] * queries.shape[1]))
    for start in range(0, len(queries), block):
        found = candidates[start : start + block]
        gathered = gather_rows(vectors, np.maximum(found, 0))
        exact = np.einsum("qkd,qd->qk", gathered, queries[start : start + block])
        exact[found < 0] = -np.inf
        best = np.argsort(-exact, axis=1, kind="stable")[:, :k]
        scores[start : start + block, : best.shape[1]] = np.take_along_axis(exact, best, 1)
        rows[start : start + block, : best.shape[1]] = np.where(
            np.isfinite(np.take_along_axis(exact, best, 1)), np.take_along_axis(found, best, 1), -1)
    return scores, rows


def exact_rows(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Row numbers of each query's k best vectors by exact inner product, scanning `vectors` in chunks."""
    heap = faiss.ResultHeap(len(queries), k, keep_max=True)
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    for start in range(0, len(vectors), 4 * CHUNK):
        block = np.ascontiguousarray(vectors[start : start + 4 * CHUNK], dtype=np.float32)
        scores, rows = faiss.knn(queries, block, min(k, len(block)), faiss.METRIC_INNER_PRODUCT)
        heap.add_result(scores, np.where(rows >= 0, rows + start, -1))
    heap.finalize()
    return np.asarray(heap.I, dtype=np.int64)


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean fraction of each query's true neighbours (row of `truth`, -1 ignored) found."""
    hits = total = 0
    for f, t in zip(found, truth, strict=True):
        wanted = set(t[t >= 0].tolist())
        hits += len(wanted & set(f.tolist()))
        total += len(wanted)
    return hits / max(1, total)


def held_out(count: int) -> int:
    """Vectors kept out of the build to tune on as fresh queries (then added): 512, or a tenth of small sets."""
    return min(TUNE_QUERIES, count // 10)


def tune(ann: AnnIndex, target_recall: float, queries: np.ndarray,
         tuned_on: str = "vectors held out of the build") -> AnnParams:
    """The cheapest search settings whose recall@10 on `queries` (vectors not in the index: stored vectors as
    queries flatter a graph index, whose search walks straight to them) reaches `target_recall` against exact
    search, or the most thorough tried when none does; sets and returns them. IVF-PQ: nprobe doubles, and for
    each the re-ranked candidates grow (one PQ search serves every k_factor)."""
    p = ann.params
    k = min(RECALL_K, ann.count)
    if k < 1 or not len(queries):
        ann.params = replace(p, nprobe=p.nlist, k_factor=K_FACTORS[-1], ef_search=EF_SEARCH[-1], recall_at_10=None,
                             recall_queries=0, target_recall=target_recall, tuned_on=tuned_on)
        return ann.params
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    truth = exact_rows(ann.vectors[: ann.count], queries, k)
    best = p
    for settings, rows in _tried(ann, queries, k):
        reached = recall(rows, truth)
        best = replace(p, **settings, recall_at_10=reached, recall_queries=len(queries), target_recall=target_recall,
                       tuned_on=tuned_on)
        if reached >= target_recall:
            break
    ann.params = best
    return best


def _tried(ann: AnnIndex, probe: np.ndarray, k: int) -> Iterator[tuple[dict[str, Any], np.ndarray]]:
    """(settings, rows found) from the cheapest settings to the most thorough."""
    if ann.params.kind == HNSW:
        for ef in EF_SEARCH:
            yield {"ef_search": ef}, ann.search_rows(probe, k, ef_search=ef)[1]
        return
    nlist = ann.params.nlist or 1
    for nprobe in sorted({min(2**i, nlist) for i in range(int(math.log2(nlist)) + 1)}):
        settings = faiss.SearchParametersIVF(nprobe=nprobe)
        candidates = ann.index.search(probe, min(ann.count, k * K_FACTORS[-1]), params=settings)[1]
        for factor in K_FACTORS:
            yield {"nprobe": nprobe, "k_factor": factor}, rerank(ann.vectors, probe, candidates[:, : k * factor], k)[1]


def build(params: AnnParams, chunks: Iterable[np.ndarray], sample: np.ndarray | None = None,
          hold: int = 0, on_step: Callable[[str], None] | None = None) -> tuple[faiss.Index, np.ndarray]:
    """A trained index holding the vectors of `chunks` (float32 (n, dim) blocks, in row order) except the last
    `hold`, which are returned instead (to tune on, then add); IVF-PQ is trained on `sample`. Memory: the index
    (codes, or graph and vectors for HNSW), one chunk and the held rows. `on_step` is called with "trained"
    and "added" (the benchmark times the phases)."""
    if params.kind == IVFPQ and sample is None:
        raise InputError("sample", "missing", "training vectors for an IVF-PQ index")
    index = train(params, sample if sample is not None else np.zeros((0, params.dim), np.float32))
    step = on_step or (lambda name: None)
    step("trained")
    held: list[np.ndarray] = []
    seen, keep = 0, params.count - hold
    for block in chunks:
        block = np.ascontiguousarray(block, dtype=np.float32)
        if seen < keep:
            index.add(block[: keep - seen])
        held.append(block[max(0, keep - seen) :])
        seen += len(block)
    if seen != params.count:
        raise InputError("vectors", f"got {seen}", f"{params.count} as counted before the build")
    tail = np.concatenate(held) if held else np.zeros((0, params.dim), np.float32)
    step("added")
    return index, tail


def finish(ann: AnnIndex, held: np.ndarray, target_recall: float, queries: np.ndarray | None = None,
           tuned_on: str = "queries given") -> AnnParams:
    """Tune on `queries` (the searches expected, e.g. text vectors for a picture index) or else on the held-out
    vectors as fresh queries, then add the held-out vectors (their rows follow the others)."""
    params = tune(ann, target_recall, held) if queries is None else tune(ann, target_recall, queries, tuned_on)
    if len(held):
        ann.index.add(np.ascontiguousarray(held, dtype=np.float32))
    return params


def from_arrays(ids: np.ndarray, vectors: np.ndarray, memory_budget: int, target_recall: float,
                kind: str = "auto", opq: bool = False, ef_construction: int = EF_CONSTRUCTION) -> AnnIndex:
    """An index over vectors already in memory (the search index's SQLite snapshot), tuned on its last rows
    held out of the build as fresh queries."""
    params = choose(len(ids), vectors.shape[1], memory_budget, kind, opq, ef_construction)
    sample = vectors[sample_rows(len(ids), training_size(params))] if params.kind == IVFPQ else None
    chunks = (vectors[s : s + CHUNK] for s in range(0, len(vectors), CHUNK))
    index, held = build(params, chunks, sample, held_out(len(ids)))
    ann = AnnIndex(params, index, vectors, np.asarray(ids, dtype=np.int64))
    finish(ann, held, target_recall)
    return ann
