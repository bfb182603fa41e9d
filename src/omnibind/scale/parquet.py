"""The Parquet embedding shards `omnibind embed-dataset` writes and the index builder reads.

One file per work unit of the shard plan (`part-000003.parquet`), one row per (sample key, modality): `key`,
`modality`, `embedding` (float32, fixed size D), `source` (the shard or manifest it came from) and `meta` (the
sample's own JSON metadata, or null). A file is written under a temporary name, fsynced and renamed into place,
so a reader (and a resumed run) finds a complete file or none; a file's presence means its unit is done.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from omnibind.errors import InputError
from omnibind.fsutil import fsync_path

PART_PREFIX, PART_SUFFIX = "part-", ".parquet"
TEMP_MARK = ".tmp-"
PLAN_FILE = "plan.json"
COLUMNS = ("key", "modality", "embedding", "source", "meta")


def schema(dim: int) -> pa.Schema:
    """The columns of every shard; `embedding` is a fixed-size list so readers get an (N, D) array cheaply."""
    return pa.schema([("key", pa.string()), ("modality", pa.string()),
                      ("embedding", pa.list_(pa.float32(), dim)), ("source", pa.string()), ("meta", pa.string())])


def part_name(unit: int) -> str:
    """The file name of one unit's embeddings."""
    return f"{PART_PREFIX}{unit:06d}{PART_SUFFIX}"


def write_part(path: Path, rows: dict[str, list[Any]], vectors: np.ndarray, dim: int,
               before_publish: Any = None) -> None:
    """Write one unit's rows atomically: a temporary file in the same folder, fsync, rename, fsync the folder.
    `before_publish` runs after the data is durable and before the rename (a hook for crash tests)."""
    flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1), type=pa.float32())
    table = pa.table({"key": pa.array(rows["key"], pa.string()), "modality": pa.array(rows["modality"], pa.string()),
                      "embedding": pa.FixedSizeListArray.from_arrays(flat, dim),
                      "source": pa.array(rows["source"], pa.string()), "meta": pa.array(rows["meta"], pa.string())},
                     schema=schema(dim))
    temp = path.with_name(f".{path.name}{TEMP_MARK}{os.getpid()}")
    pq.write_table(table, temp, compression="zstd")
    fsync_path(temp)
    if before_publish is not None:
        before_publish()
    os.replace(temp, path)
    fsync_path(path.parent)


def remove_temporaries(folder: Path, name: str) -> None:
    """Delete what a killed writer of `name` left behind (its temporary files)."""
    for leftover in folder.glob(f".{name}{TEMP_MARK}*"):
        leftover.unlink(missing_ok=True)


def part_files(folder: Path) -> list[Path]:
    """The finished shards of an embedding folder, in unit order; an error names a folder with none."""
    if not folder.is_dir():
        raise InputError(folder, "not a folder", "a folder written by `omnibind embed-dataset`")
    parts = sorted(p for p in folder.iterdir() if p.name.startswith(PART_PREFIX) and p.name.endswith(PART_SUFFIX))
    if not parts:
        raise InputError(folder, f"holds no {PART_PREFIX}*{PART_SUFFIX} files", "a folder written by "
                         "`omnibind embed-dataset`")
    return parts


def read_plan(folder: Path) -> dict[str, Any] | None:
    """The plan an embedding folder was written for (shard list, model, dim), None when there is none yet."""
    try:
        plan = json.loads((folder / PLAN_FILE).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        raise InputError(folder / PLAN_FILE, f"unreadable ({err})",
                         "the JSON plan `omnibind embed-dataset` wrote") from err
    if not isinstance(plan, dict) or not isinstance(plan.get("embed_dim"), int):
        raise InputError(folder / PLAN_FILE, "has no integer `embed_dim`", "the plan `omnibind embed-dataset` wrote")
    return plan


def write_plan(folder: Path, plan: dict[str, Any]) -> None:
    """Record the plan atomically (temporary file, fsync, rename)."""
    temp = folder / f".{PLAN_FILE}{TEMP_MARK}{os.getpid()}"
    temp.write_text(json.dumps(plan, indent=2) + "\n")
    fsync_path(temp)
    os.replace(temp, folder / PLAN_FILE)
    fsync_path(folder)


def embed_dim(folder: Path) -> int:
    """The embedding size of a folder's shards, from its plan (or the first shard's schema)."""
    plan = read_plan(folder)
    if plan is not None:
        return int(plan["embed_dim"])
    field = pq.read_schema(part_files(folder)[0]).field("embedding")
    return int(field.type.list_size)


def count_rows(folder: Path, modality: str | None = None) -> int:
    """Rows in every shard (of one modality when given), read from Parquet footers and one column."""
    total = 0
    for path in part_files(folder):
        if modality is None:
            total += pq.ParquetFile(path).metadata.num_rows
        else:
            column = pq.read_table(path, columns=["modality"]).column("modality").to_numpy(zero_copy_only=False)
            total += int((column == modality).sum())
    return total


def iter_vectors(folder: Path, modality: str | None = None, batch_rows: int = 65_536
                 ) -> Iterator[tuple[list[str], list[str], np.ndarray]]:
    """(keys, modalities, float32 (n, D) vectors) in shard order, a bounded batch at a time, of one modality
    when given; an error names a shard whose embedding column is not what the folder's plan says."""
    dim = embed_dim(folder)
    for path in part_files(folder):
        handle = pq.ParquetFile(path)
        field = handle.schema_arrow.field("embedding")
        if not pa.types.is_fixed_size_list(field.type) or field.type.list_size != dim:
            raise InputError(path, f"embedding column is {field.type}", f"fixed_size_list<float>[{dim}]")
        for batch in handle.iter_batches(batch_size=batch_rows, columns=["key", "modality", "embedding"]):
            keys = batch.column(0).to_pylist()
            modalities = batch.column(1).to_pylist()
            vectors = batch.column(2).values.to_numpy(zero_copy_only=False).reshape(-1, dim)
            if modality is not None:
                chosen = [i for i, m in enumerate(modalities) if m == modality]
                keys, modalities, vectors = [keys[i] for i in chosen], [modality] * len(chosen), vectors[chosen]
            if keys:
                yield keys, modalities, np.ascontiguousarray(vectors, dtype=np.float32)
