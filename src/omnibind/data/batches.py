"""Batch streams indexed by global batch: batch k is a pure function of (seed, k) and rank r takes its
slice of it, so runs with any world size see the same global batches and a position is one number."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from omnibind.errors import InputError


class GlobalBatches:
    """Subclasses give `batch(index)` (this rank's slice of global batch `index`) and `identity()` (what
    the batches derive from, checked on resume); iteration and state_dict / load_state_dict live here."""

    def __init__(self, global_batch: int, seed: int = 0, rank: int = 0, world_size: int = 1) -> None:
        if global_batch % world_size:
            raise ValueError(f"data.batch_size {global_batch} must be divisible by the world size {world_size}")
        self.global_batch, self.seed, self.rank, self.world_size = global_batch, seed, rank, world_size
        self.next_index = 0

    @property
    def local_batch(self) -> int:
        """Examples per rank per step."""
        return self.global_batch // self.world_size

    @property
    def local_rows(self) -> slice:
        """This rank's rows of a global batch."""
        return slice(self.rank * self.local_batch, (self.rank + 1) * self.local_batch)

    def batch(self, index: int) -> dict[str, Any]:
        """This rank's slice of global batch `index`."""
        raise NotImplementedError

    def identity(self) -> dict[str, Any]:
        """What the batches derive from besides the index (a resumed stream must match it)."""
        return {"seed": self.seed}

    def __iter__(self) -> Iterator[dict[str, Any]]:
        while True:
            batch = self.batch(self.next_index)
            self.next_index += 1
            yield batch

    def state_dict(self) -> dict[str, Any]:
        """The position: the index of the next global batch, and the identity of the stream."""
        return {"next_index": self.next_index, **self.identity()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue right after the last batch yielded before `state_dict()`; refuses another stream."""
        saved = {k: state.get(k) for k in self.identity()}
        if saved != self.identity():
            raise InputError("data position", f"saved for {saved}", f"{self.identity()} (the same data and seed)")
        self.next_index = int(state["next_index"])
