"""The per-worker stream behind the loader: which units a worker reads in each epoch, the shuffle
buffer, decoding, batching, and the position it reports with every batch so a run can resume exactly.

Global worker g of G (G = world_size × max(1, num_workers)) reads units order[g::G] of each epoch, where
`order` is the same seeded permutation on every rank; its samples pass a seeded shuffle buffer. Both
are pure functions of (seed, epoch, g), so replaying an epoch and skipping the first n samples puts a
worker back exactly where it was: that n, per worker, is the saved position.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

import torch
from torch.utils.data import IterableDataset, get_worker_info

from omnibind.data.decode import Example, InputSpec, collate, decode
from omnibind.data.samples import ManifestLine, RawSample
from omnibind.data.seeding import derive_seed
from omnibind.data.shardlist import ShardPlan, Unit
from omnibind.data.skips import SampleSkip, SkipStats

T = TypeVar("T")


def shuffled(items: Iterable[T], size: int, rng: random.Random) -> Iterator[T]:
    """Streaming shuffle: keep `size` items, emit a random one as each new item arrives, then the rest."""
    buffer: list[T] = []
    for item in items:
        if len(buffer) < size:
            buffer.append(item)
            continue
        index = rng.randrange(size)
        yield buffer[index]
        buffer[index] = item
    rng.shuffle(buffer)
    yield from buffer


@dataclass
class Position:
    """Where one worker's stream stands: `consumed` samples of `epoch` are used up; `done` at its end."""

    epoch: int = 0
    consumed: int = 0
    done: bool = False


@dataclass
class Message:
    """What a worker sends: a batch (or None at the end), its position after it and its skip counts."""

    worker: int
    position: Position
    skips: dict[str, Any]
    batch: dict[str, Any] | None = None


@dataclass
class StreamSettings:
    """Everything that shapes the stream (copied into every worker)."""

    batch_size: int
    shuffle_buffer: int
    seed: int
    drop_last: bool
    epochs: int | None
    rank: int
    world_size: int
    num_workers: int
    starts: list[Position] = field(default_factory=list)
    start_skips: list[dict[str, Any]] = field(default_factory=list)

    @property
    def local_workers(self) -> int:
        """Workers per rank (num_workers = 0 still means one stream, in the main process)."""
        return max(1, self.num_workers)


class WorkerStream(IterableDataset):
    """IterableDataset of Messages; each DataLoader worker (or the main process) runs its own stream."""

    def __init__(self, plan: ShardPlan, processors: dict[str, Any], specs: dict[str, InputSpec],
                 settings: StreamSettings) -> None:
        super().__init__()
        self.plan, self.processors, self.specs, self.settings = plan, processors, specs, settings

    def __iter__(self) -> Iterator[Message]:
        info = get_worker_info()
        return self.run(0 if info is None else info.id)

    def units_for(self, epoch: int, global_id: int) -> list[Unit]:
        """The units global worker `global_id` reads in `epoch` (a seeded permutation when shuffling)."""
        s = self.settings
        order = list(range(len(self.plan.units)))
        if s.shuffle_buffer > 0:
            random.Random(derive_seed(s.seed, "units", epoch)).shuffle(order)
        total = s.world_size * s.local_workers
        return [self.plan.units[i] for i in order[global_id::total]]

    def samples(self, epoch: int, global_id: int, stats: SkipStats) -> Iterator[RawSample | ManifestLine]:
        """Raw samples of one epoch for one worker, after the shuffle buffer."""
        s = self.settings
        raw = (sample for unit in self.units_for(epoch, global_id) for sample in unit.samples(stats.add))
        if s.shuffle_buffer > 0:
            rng = random.Random(derive_seed(s.seed, "buffer", epoch, global_id))
            return shuffled(raw, s.shuffle_buffer, rng)
        return raw

    def run(self, local_id: int) -> Iterator[Message]:
        """Decode, batch and report positions, starting from this worker's saved position."""
        stream = self._run(local_id)
        if get_worker_info() is not None:  # DataLoader workers already run with one torch thread
            yield from stream
            return
        # In the main process (num_workers=0), decode with one thread too: on small per-example tensors
        # intra-op threads only contend (measured 3-5x slower on 2 busy cores). The caller's setting is back
        # whenever a batch is out with the caller, so training keeps all its threads.
        caller = torch.get_num_threads()
        while True:
            torch.set_num_threads(1)
            try:
                message = next(stream)
            except StopIteration:
                return
            finally:
                torch.set_num_threads(caller)
            yield message

    def _run(self, local_id: int) -> Iterator[Message]:
        s = self.settings
        global_id = s.rank * s.local_workers + local_id
        start = s.starts[local_id] if s.starts else Position()
        stats = SkipStats.from_dict(s.start_skips[local_id] if s.start_skips else None)
        if start.done:
            yield Message(local_id, start, stats.to_dict())
            return
        pending: list[Example] = []
        epoch, position = start.epoch, Position(start.epoch, start.consumed)
        while s.epochs is None or epoch < s.epochs:
            skip = start.consumed if epoch == start.epoch else 0
            stats.muted = skip > 0
            decoded = 0
            for index, raw in enumerate(self.samples(epoch, global_id, stats)):
                if index < skip:  # fast-forward without decoding; unmute before the next sample is pulled
                    stats.muted = index < skip - 1
                    continue
                position = Position(epoch, index + 1)
                try:
                    pending.append(decode(raw, self.processors))
                    decoded += 1
                except SampleSkip as skipped:
                    stats.add_skip(skipped)
                    continue
                if len(pending) == s.batch_size:
                    yield Message(local_id, position, stats.to_dict(), collate(pending, self.specs))
                    pending = []
            stats.muted = False
            epoch += 1
            position = Position(epoch, 0)
            if s.epochs is None and decoded == 0 and skip == 0:
                break  # an endless stream with nothing decodable would spin forever: end it, the stats say why
        if pending and not s.drop_last:
            yield Message(local_id, position, stats.to_dict(), collate(pending, self.specs))
        yield Message(local_id, Position(position.epoch, position.consumed, done=True), stats.to_dict())


def position_dict(position: Position) -> dict[str, Any]:
    """JSON form of a Position."""
    return asdict(position)
