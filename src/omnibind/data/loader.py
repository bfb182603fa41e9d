"""The training and evaluation loader: streams shards (or manifests) split across ranks and DataLoader
workers with no duplicates or losses, shuffles with a seeded buffer, decodes in the workers, and can
save and restore its exact position.

    loader = make_loader(LoaderConfig("data/train/shard-{000000..000009}.tar", batch_size=256),
                         processors, rank, world_size)
    for batch in loader: ...                      # batch["image"], batch["image_mask"], ..., batch["key"]
    state = loader.state_dict()                   # JSON-serialisable; load_state_dict(state) resumes

`specs` (what each tower takes: `input_specs(model.config.towers)`) shape the zeros of absent modalities;
without them they are read off the processors, which only the built-in preprocessors allow.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from torch.utils.data import DataLoader

from omnibind.data.decode import InputSpec, specs_for
from omnibind.data.shardlist import ShardPlan
from omnibind.data.skips import SkipStats
from omnibind.data.stream import Message, Position, StreamSettings, WorkerStream, position_dict
from omnibind.errors import InputError

STATE_VERSION = 1


@dataclass
class LoaderConfig:
    """What to load and how; `epochs=None` repeats forever (training), 1 is one pass (evaluation)."""

    shards: str | list[str]
    batch_size: int
    num_workers: int = 2
    shuffle_buffer: int = 1000  # 0 = no shuffle (units and samples in stored order)
    seed: int = 0
    drop_last: bool = True
    epochs: int | None = None

    def check(self) -> None:
        """Reject impossible settings with a message naming the field."""
        for name, low in (("batch_size", 1), ("num_workers", 0), ("shuffle_buffer", 0)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise InputError(f"LoaderConfig.{name}", f"got {value!r}", f"an integer >= {low}")
        if self.epochs is not None and (not isinstance(self.epochs, int) or self.epochs < 1):
            raise InputError("LoaderConfig.epochs", f"got {self.epochs!r}", "None (forever) or an integer >= 1")


def make_loader(config: LoaderConfig, processors: dict[str, Any], rank: int = 0, world_size: int = 1,
                specs: Mapping[str, InputSpec] | None = None) -> ResumableLoader:
    """A ResumableLoader for this rank; the shard list is expanded and checked here, in the caller.
    `specs`: each processor's output spec (`input_specs(model.config.towers)`); needed for plugin modalities."""
    config.check()
    if not (isinstance(world_size, int) and world_size >= 1 and isinstance(rank, int) and 0 <= rank < world_size):
        raise InputError("rank", f"rank {rank!r} of world_size {world_size!r}", "0 <= rank < world_size")
    checked = specs_for(processors, specs)
    plan = ShardPlan.build(config.shards, world_size * max(1, config.num_workers))
    return ResumableLoader(config, processors, rank, world_size, plan, checked)


class ResumableLoader:
    """Iterates batches; each `__iter__` continues from the current position (after a finished pass,
    from the start). `state_dict()` / `load_state_dict()` save and restore that position exactly."""

    def __init__(self, config: LoaderConfig, processors: dict[str, Any], rank: int, world_size: int,
                 plan: ShardPlan, specs: dict[str, InputSpec]) -> None:
        self.config, self.processors, self.rank, self.world_size = config, processors, rank, world_size
        self.plan, self.specs = plan, specs
        workers = max(1, config.num_workers)
        self._positions = [Position() for _ in range(workers)]
        self._skips: list[dict[str, Any]] = [{} for _ in range(workers)]

    @property
    def stats(self) -> SkipStats:
        """Skipped samples per reason, merged across this rank's workers (up to the last batch yielded)."""
        return SkipStats().merged(*(SkipStats.from_dict(s) for s in self._skips))

    @property
    def epoch(self) -> int:
        """The earliest epoch any of this rank's workers is still in."""
        return min(p.epoch for p in self._positions)

    def _settings(self) -> StreamSettings:
        c = self.config
        return StreamSettings(c.batch_size, c.shuffle_buffer, c.seed, c.drop_last, c.epochs, self.rank,
                              self.world_size, c.num_workers, copy.deepcopy(self._positions),
                              copy.deepcopy(self._skips))

    def _messages(self) -> Iterator[Message]:
        stream = WorkerStream(self.plan, self.processors, self.specs, self._settings())
        if self.config.num_workers == 0:
            return stream.run(0)
        loader = DataLoader(stream, batch_size=None, num_workers=self.config.num_workers, collate_fn=_identity)
        return iter(loader)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        yielded = 0
        for message in self._messages():
            self._positions[message.worker] = message.position
            self._skips[message.worker] = message.skips
            if message.batch is not None:
                yielded += 1
                yield message.batch
        if self.config.epochs is None and yielded == 0:
            raise InputError("shards", f"{self.config.shards!r} gave no decodable examples for rank {self.rank}",
                             f"shards with usable samples; {self.stats}")
        if all(p.done for p in self._positions):  # a finished pass: the next __iter__ starts a new one
            self._positions = [Position() for _ in self._positions]

    def state_dict(self) -> dict[str, Any]:
        """JSON-serialisable position: epoch and samples consumed per worker, skip counts, and what the
        seeded permutations derive from (seed, layout and the shard list's fingerprint)."""
        c = self.config
        return {
            "version": STATE_VERSION,
            "epoch": self.epoch,
            "workers": [position_dict(p) for p in self._positions],
            "skips": copy.deepcopy(self._skips),
            "rng": {"seed": c.seed, "derivation": "sha256(seed, purpose, epoch[, global worker])"},
            "layout": self._layout(),
        }

    def _layout(self) -> dict[str, Any]:
        c = self.config
        return {"rank": self.rank, "world_size": self.world_size, "num_workers": c.num_workers,
                "shuffle_buffer": c.shuffle_buffer, "seed": c.seed, "shards": self.plan.fingerprint}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a position saved by state_dict() from a loader with the same shards and layout."""
        if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
            raise InputError("loader state", f"version {state.get('version') if isinstance(state, dict) else state!r}",
                             f"a dict from ResumableLoader.state_dict() (version {STATE_VERSION})")
        saved, ours = state.get("layout", {}), self._layout()
        for name, value in ours.items():
            if saved.get(name) != value:
                raise InputError(f"loader state: {name}", f"saved {saved.get(name)!r}, this loader has {value!r}",
                                 "the same shards, seed, shuffle buffer, rank, world size and workers to resume")
        workers = state["workers"]
        self._positions = [Position(int(w["epoch"]), int(w["consumed"]), bool(w["done"])) for w in workers]
        self._skips = [dict(s) for s in state.get("skips", [{} for _ in workers])]


def _identity(message: Message) -> Message:
    """DataLoader collate_fn: workers already batch, so messages pass through untouched."""
    return message
