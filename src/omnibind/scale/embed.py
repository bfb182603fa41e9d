"""`omnibind embed-dataset`: embed every sample of a shard list into Parquet, alone or as one rank of torchrun.

The shard list becomes the loader's plan (omnibind.data.shardlist: one work unit per shard or manifest chunk)
and rank r of R takes units r, r+R, ... exactly as the loader's workers split them (WorkerStream.units_for,
unshuffled). Each unit is embedded on its own, in batches that never cross units, and written as one Parquet
file renamed into place when complete: a unit is done when its file exists, so a rerun (after a crash, or with
another number of ranks) skips finished units and redoes only the rest, and every key lands exactly once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from omnibind.data.decode import Example, InputSpec, collate, decode, input_specs
from omnibind.data.samples import META_EXT
from omnibind.data.shardlist import ShardPlan, Unit
from omnibind.data.skips import SampleSkip, SkipStats
from omnibind.data.stream import StreamSettings, WorkerStream
from omnibind.errors import InputError
from omnibind.models.model import OmniBind
from omnibind.progress import progress_bar
from omnibind.scale import parquet

PLAN_FORMAT = 1


@dataclass
class Piece:
    """What a decoding worker sends: one batch of a unit (with its keys and metadata), or the unit's end."""

    unit: int
    batch: dict[str, Any] | None = None
    metas: list[str | None] = field(default_factory=list)
    skips: dict[str, Any] | None = None


@dataclass
class EmbedReport:
    """What one rank did: units it owns, units already done before this run, units and rows it wrote."""

    rank: int
    world_size: int
    units_owned: int = 0
    units_already_done: int = 0
    units_written: int = 0
    rows: int = 0
    examples: int = 0
    skipped: SkipStats = field(default_factory=SkipStats)
    seconds: float = 0.0


def rank_units(plan: ShardPlan, rank: int, world_size: int) -> list[int]:
    """Indices of the units this rank embeds: the loader's split of an unshuffled plan over `world_size` ranks."""
    settings = StreamSettings(batch_size=1, shuffle_buffer=0, seed=0, drop_last=False, epochs=1, rank=rank,
                              world_size=world_size, num_workers=0)
    position = {unit: index for index, unit in enumerate(plan.units)}
    return [position[unit] for unit in WorkerStream(plan, {}, {}, settings).units_for(0, rank)]


class UnitBatches(IterableDataset[Piece]):
    """Decoded batches of whole units; DataLoader worker w of W decodes units w, w+W, ... of the list."""

    def __init__(self, units: list[tuple[int, Unit]], processors: Mapping[str, Any], specs: Mapping[str, InputSpec],
                 batch_size: int) -> None:
        super().__init__()
        self.units, self.processors, self.specs, self.batch_size = units, processors, specs, batch_size

    def __iter__(self) -> Iterator[Piece]:
        info = get_worker_info()
        worker, workers = (0, 1) if info is None else (info.id, info.num_workers)
        for index, unit in self.units[worker::workers]:
            yield from self._unit(index, unit)

    def _unit(self, index: int, unit: Unit) -> Iterator[Piece]:
        stats = SkipStats()
        examples: list[Example] = []
        metas: list[str | None] = []
        for raw in unit.samples(stats.add):
            try:
                sample = raw.materialize()
                examples.append(decode(sample, self.processors))
            except SampleSkip as skipped:
                stats.add_skip(skipped)
                continue
            meta = sample.fields.get(META_EXT)
            metas.append(None if meta is None else sample.read(META_EXT).decode("utf-8", errors="replace"))
            if len(examples) == self.batch_size:
                yield Piece(index, collate(examples, self.specs), metas)
                examples, metas = [], []
        if examples:
            yield Piece(index, collate(examples, self.specs), metas)
        yield Piece(index, skips=stats.to_dict())


class UnitRows:
    """The rows of one unit gathered so far: key, modality, source and metadata per row, and their vectors."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.rows: dict[str, list[Any]] = {name: [] for name in ("key", "modality", "source", "meta")}
        self.vectors: list[np.ndarray] = []
        self.examples = 0

    @torch.no_grad()
    def add(self, model: OmniBind, batch: dict[str, Any], metas: list[str | None]) -> int:
        """Embed every modality the batch has (only the examples that have it); returns the rows added."""
        added = 0
        self.examples += len(batch["key"])
        for modality in model.modalities:
            mask = batch.get(f"{modality}_mask")
            if mask is None or not bool(mask.any()):
                continue
            chosen = mask.nonzero().flatten().tolist()
            self.vectors.append(model.encode(modality, batch[modality][mask]).float().cpu().numpy())
            self.rows["key"] += [batch["key"][i] for i in chosen]
            self.rows["modality"] += [modality] * len(chosen)
            self.rows["source"] += [self.source] * len(chosen)
            self.rows["meta"] += [metas[i] for i in chosen]
            added += len(chosen)
        return added

    def matrix(self, dim: int) -> np.ndarray:
        """All vectors of the unit as one (rows, dim) float32 array."""
        return np.concatenate(self.vectors) if self.vectors else np.zeros((0, dim), dtype=np.float32)


def make_plan(shards: str | list[str], identity: Mapping[str, Any], embed_dim: int) -> tuple[ShardPlan, dict[str, Any]]:
    """The shard plan (whole shards and manifest chunks, never split by rank count, so a rerun with another
    number of ranks names the same units) and its JSON record."""
    plan = ShardPlan.build(shards, global_workers=1)
    record = {"format": PLAN_FORMAT, "embed_dim": embed_dim, "model": dict(identity),
              "units": [unit.describe() for unit in plan.units]}
    return plan, record


def check_plan(out: Path, record: dict[str, Any]) -> None:
    """Refuse an output folder written for another shard list or model (its parts would mix with ours)."""
    saved = parquet.read_plan(out)
    if saved is None:
        return
    recorded = saved.get("model")
    model: dict[str, Any] = recorded if isinstance(recorded, dict) else {}
    checks = (("units", "shard list", saved.get("units"), record["units"]),
              ("model", "model", model.get("fingerprint"), record["model"].get("fingerprint")),
              ("embed_dim", "embedding size", saved.get("embed_dim"), record["embed_dim"]))
    for _, what, theirs, ours in checks:
        if theirs != ours:
            raise InputError(out / parquet.PLAN_FILE, f"this folder holds embeddings of another {what}",
                             "the same shards and model as the run that started it, or a new --out folder")


def embed_dataset(shards: str | list[str], model: OmniBind, identity: Mapping[str, Any], out: str | Path,
                  rank: int = 0, world_size: int = 1, batch_size: int = 64, num_workers: int = 0,
                  show_progress: bool = False, before_publish: Callable[[int], None] | None = None) -> EmbedReport:
    """Embed this rank's units of `shards` into `out`/part-NNNNNN.parquet, skipping units already written.
    `before_publish(unit)` runs after a unit's file is durable and before it is renamed into place (crash tests)."""
    if batch_size < 1 or num_workers < 0:
        raise InputError("batch_size / num_workers", f"got {batch_size} / {num_workers}", "batch_size >= 1, "
                         "num_workers >= 0")
    start = time.perf_counter()
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    dim = model.config.embed_dim
    plan, record = make_plan(shards, identity, dim)
    check_plan(folder, record)
    if rank == 0 and parquet.read_plan(folder) is None:
        parquet.write_plan(folder, record)
    report = EmbedReport(rank, world_size)
    owned = rank_units(plan, rank, world_size)
    todo = []
    for index in owned:
        parquet.remove_temporaries(folder, parquet.part_name(index))
        if not (folder / parquet.part_name(index)).exists():
            todo.append((index, plan.units[index]))
    report.units_owned, report.units_already_done = len(owned), len(owned) - len(todo)
    processors = {m: p for m, p in model.processors.items() if m in model.modalities}
    dataset = UnitBatches(todo, processors, input_specs({m: model.config.towers[m] for m in processors}), batch_size)
    pieces: Any = dataset if num_workers == 0 or not todo else DataLoader(
        dataset, batch_size=None, num_workers=min(num_workers, len(todo)), collate_fn=_identity)
    gathered: dict[int, UnitRows] = {}
    with progress_bar(disable=not show_progress) as progress:
        shard_task = progress.add_task(f"rank {rank}: shards", total=len(todo), unit="shards")
        item_task = progress.add_task(f"rank {rank}: embedded", total=None, unit="items")
        for piece in pieces:
            rows = gathered.setdefault(piece.unit, UnitRows(plan.units[piece.unit].url))
            if piece.batch is not None:
                progress.advance(item_task, rows.add(model, piece.batch, piece.metas))
                continue
            report.skipped = report.skipped.merged(SkipStats.from_dict(piece.skips))
            path = folder / parquet.part_name(piece.unit)
            hook = None if before_publish is None else (lambda unit=piece.unit: before_publish(unit))
            parquet.write_part(path, rows.rows, rows.matrix(dim), dim, hook)
            report.units_written += 1
            report.rows += len(rows.rows["key"])
            report.examples += rows.examples
            del gathered[piece.unit]
            progress.advance(shard_task)
    report.seconds = time.perf_counter() - start
    return report


def _identity(piece: Any) -> Any:
    """DataLoader collate_fn: the workers already batch."""
    return piece
