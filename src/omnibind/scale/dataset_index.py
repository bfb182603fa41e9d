"""An approximate index over the Parquet shards of `omnibind embed-dataset`, one sub-index per modality.

Built in two streaming passes over the shards (a random training sample for IVF-PQ, then every vector), so
memory holds the index (PQ codes, or HNSW's graph and vectors) plus one batch; the full vectors go to a
memory-mapped file as they stream. Each modality's folder is built under a temporary name and renamed into
place when complete; `index.json` lists the modalities and where the embeddings came from.

    omnibind index-dataset emb/ --out idx/ --memory-budget 2GB --target-recall 0.95
    DatasetIndex.open("idx/").search(vector, k=10, modality="image")   # [(key, score), ...]
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from omnibind.errors import InputError
from omnibind.fsutil import fsync_path
from omnibind.progress import progress_bar
from omnibind.scale import ann, parquet

INDEX_FILE = "index.json"
KEYS_FILE = "keys.parquet"
FORMAT = 1


def modality_counts(folder: Path) -> dict[str, int]:
    """Rows per modality across an embedding folder's shards (reads only the modality column)."""
    counts: dict[str, int] = {}
    for path in parquet.part_files(folder):
        values, numbers = np.unique(pq.read_table(path, columns=["modality"]).column("modality").to_numpy(
            zero_copy_only=False), return_counts=True)
        for value, number in zip(values.tolist(), numbers.tolist(), strict=True):
            counts[value] = counts.get(value, 0) + number
    return counts


def gather_rows(folder: Path, modality: str, rows: np.ndarray, dim: int) -> np.ndarray:
    """The vectors at sorted row numbers (counted within `modality`), in one streaming pass."""
    out = np.empty((len(rows), dim), dtype=np.float32)
    seen = filled = 0
    for _, _, vectors in parquet.iter_vectors(folder, modality):
        chosen = rows[(rows >= seen) & (rows < seen + len(vectors))]
        out[filled : filled + len(chosen)] = vectors[chosen - seen]
        filled += len(chosen)
        seen += len(vectors)
    return out[:filled]


def build_modality(source: Path, out: Path, modality: str, count: int, dim: int, memory_budget: int,
                   target_recall: float, kind: str = "auto", opq: bool = False, show_progress: bool = False,
                   queries: np.ndarray | None = None, tuned_on: str = "queries given",
                   on_step: Callable[[str], None] | None = None,
                   ef_construction: int = ann.EF_CONSTRUCTION) -> ann.AnnParams:
    """Build, tune (on `queries`, else on held-out vectors) and publish `out/<modality>/` from the shards'
    vectors of that modality."""
    params = ann.choose(count, dim, memory_budget, kind, opq, ef_construction)
    temp = out / f".tmp-{modality}-{os.getpid()}"
    shutil.rmtree(temp, ignore_errors=True)
    temp.mkdir(parents=True)
    try:
        return _build_into(source, temp, out / modality, params, target_recall, show_progress, queries, tuned_on,
                           on_step or (lambda name: None))
    finally:
        shutil.rmtree(temp, ignore_errors=True)


def _build_into(source: Path, temp: Path, final: Path, params: ann.AnnParams, target_recall: float,
                show_progress: bool, queries: np.ndarray | None, tuned_on: str,
                step: Callable[[str], None]) -> ann.AnnParams:
    """Stream the vectors of one modality (`final`'s name) into `temp`, tune, and rename `temp` to `final`;
    `step` is called with "sampled", "trained", "added", "tuned" and "saved" (the benchmark times them)."""
    modality, count, dim = final.name, params.count, params.dim
    sample = None
    if params.kind == ann.IVFPQ:
        sample = gather_rows(source, modality, ann.sample_rows(count, ann.training_size(params)), dim)
    step("sampled")
    schema = pa.schema([("key", pa.string())])
    with open(temp / ann.VECTORS_FILE, "wb") as raw, pq.ParquetWriter(temp / KEYS_FILE, schema) as keys, \
            progress_bar(disable=not show_progress) as progress:
        task = progress.add_task(f"indexing {modality} ({params.factory()})", total=count, unit="vectors")

        def chunks() -> Any:
            for batch_keys, _, vectors in parquet.iter_vectors(source, modality):
                raw.write(vectors.tobytes())
                keys.write_table(pa.table({"key": pa.array(batch_keys, pa.string())}, schema=schema))
                yield vectors
                progress.advance(task, len(vectors))

        index, held = ann.build(params, chunks(), sample, 0 if queries is not None else ann.held_out(count), step)
    del sample
    vectors = np.memmap(temp / ann.VECTORS_FILE, dtype=np.float32, mode="r", shape=(count, dim))
    built = ann.AnnIndex(params, index, vectors, np.arange(count, dtype=np.int64))
    tuned = ann.finish(built, held, target_recall, queries, tuned_on)
    step("tuned")
    built.save(temp, write_vectors=False)
    del index, vectors, built
    if tuned.kind == ann.HNSW:  # its index file holds the vectors; this copy only served tuning
        (temp / ann.VECTORS_FILE).unlink()
    if final.exists():
        shutil.rmtree(final)
    os.replace(temp, final)
    fsync_path(final.parent)
    step("saved")
    return tuned


def build_dataset_index(source: str | Path, out: str | Path, modalities: list[str] | None = None,
                        memory_budget: int = 4 * 2**30, target_recall: float = 0.95, kind: str = "auto",
                        opq: bool = False, show_progress: bool = False,
                        query_modality: str | None = None,
                        on_step: Callable[[str, str], None] | None = None,
                        ef_construction: int = ann.EF_CONSTRUCTION) -> dict[str, ann.AnnParams]:
    """One tuned on-disk index per modality of an embedding folder (or of the named ones); the memory budget
    applies to each modality's index, `ef_construction` to HNSW builds. With `query_modality`, each index's
    search settings are tuned on up to 512 of that modality's vectors as queries (text → picture search), else
    on its own held-out vectors. `on_step(modality, step)` follows each build's phases."""
    source, out = Path(source), Path(out)
    if not 0 < target_recall <= 1:
        raise InputError("target recall", f"got {target_recall}", "a fraction in (0, 1]")
    ann.check_ef_construction(ef_construction)  # before reading the shards, not after the first modality
    counts = modality_counts(source)
    chosen = modalities or sorted(counts)
    missing = [m for m in [*chosen, *([query_modality] if query_modality else [])] if m not in counts]
    if missing:
        raise InputError(source, f"holds no {', '.join(missing)} embeddings", f"one of {', '.join(sorted(counts))}")
    dim = parquet.embed_dim(source)
    out.mkdir(parents=True, exist_ok=True)
    for leftover in out.glob(".tmp-*"):  # a killed builder's half-written modality
        shutil.rmtree(leftover, ignore_errors=True)
    queries = None if query_modality is None else gather_rows(
        source, query_modality, ann.sample_rows(counts[query_modality], ann.TUNE_QUERIES), dim)
    built = {m: build_modality(source, out, m, counts[m], dim, memory_budget, target_recall, kind, opq,
                               show_progress, queries if m != query_modality else None, f"{query_modality} vectors",
                               _for_modality(on_step, m), ef_construction)
             for m in chosen}
    plan = parquet.read_plan(source) or {}
    record = {"format": FORMAT, "source": str(source.resolve()), "embed_dim": dim, "model": plan.get("model"),
              "modalities": {m: p.to_dict() for m, p in built.items()}}
    temp = out / f".{INDEX_FILE}.tmp-{os.getpid()}"
    temp.write_text(json.dumps(record, indent=2) + "\n")
    fsync_path(temp)
    os.replace(temp, out / INDEX_FILE)
    fsync_path(out)
    return built


def _for_modality(on_step: Callable[[str, str], None] | None, modality: str) -> Callable[[str], None] | None:
    """A build's step hook that names its modality."""
    if on_step is None:
        return None
    hook = on_step
    return lambda name: hook(modality, name)


@dataclass
class DatasetIndex:
    """An opened dataset index: per modality its memory-mapped approximate index and its row keys."""

    folder: Path
    record: dict[str, Any]
    parts: dict[str, ann.AnnIndex]
    keys: dict[str, pa.Array]

    @classmethod
    def open(cls, folder: str | Path) -> DatasetIndex:
        """Map every modality's index and keys; an error names a missing or damaged file."""
        folder = Path(folder)
        try:
            record = json.loads((folder / INDEX_FILE).read_text())
        except (OSError, ValueError) as err:
            raise InputError(folder / INDEX_FILE, f"unreadable ({err})", "a folder written by "
                             "`omnibind index-dataset`") from err
        parts, keys = {}, {}
        for modality in record.get("modalities", {}):
            parts[modality] = ann.AnnIndex.open(folder / modality)
            table = pq.read_table(folder / modality / KEYS_FILE, memory_map=True)
            keys[modality] = table.column("key").combine_chunks()
            if len(keys[modality]) != parts[modality].count:
                raise InputError(folder / modality / KEYS_FILE, f"{len(keys[modality])} keys",
                                 f"{parts[modality].count}, one per indexed vector")
        return cls(folder, record, parts, keys)

    @property
    def embed_dim(self) -> int:
        """Size of the indexed vectors."""
        return int(self.record["embed_dim"])

    def search(self, query: np.ndarray, k: int = 10, modalities: list[str] | None = None
               ) -> list[tuple[str, str, float]]:
        """(key, modality, score) of the k best items of the given modalities (all when None), best first."""
        hits: list[tuple[str, str, float]] = []
        for modality, part in self.parts.items():
            if modalities is not None and modality not in modalities:
                continue
            scores, rows = part.search(np.asarray(query, dtype=np.float32).reshape(1, -1), k)
            keys = self.keys[modality]
            hits += [(str(keys[int(r)]), modality, float(s)) for s, r in zip(scores[0], rows[0], strict=True)
                     if r >= 0]
        return sorted(hits, key=lambda hit: -hit[2])[:k]
