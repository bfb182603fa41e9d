"""A dataset decoded once into memory, then served as seeded global batches: for small sets (the starter
set, studies) where decoding the same files every epoch would cost more than the model step."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fnmatch import fnmatchcase
from typing import Any

import torch

from omnibind.data.batches import GlobalBatches
from omnibind.data.decode import InputSpec
from omnibind.data.loader import LoaderConfig, make_loader
from omnibind.errors import InputError
from omnibind.progress import progress_bar


class DecodedSet:
    """Every example of a shard spec, preprocessed: per modality the stacked tensors of the examples that
    have it and `rows[m]`, the row of each example in them (-1 where the example lacks the modality)."""

    def __init__(self, keys: list[str], tensors: dict[str, torch.Tensor], rows: dict[str, torch.Tensor]) -> None:
        self.keys, self.tensors, self.rows = keys, tensors, rows

    def __len__(self) -> int:
        return len(self.keys)

    @classmethod
    def decode(cls, shards: str | list[str], processors: dict[str, Any], num_workers: int = 1,
               show_progress: bool = False, specs: Mapping[str, InputSpec] | None = None) -> DecodedSet:
        """One pass of the shard loader in stored order; examples are then sorted by key, so the set does
        not depend on the worker layout. Skipped samples stay skipped (the loader counts them). `specs` as
        for `make_loader` (`input_specs(model.config.towers)`)."""
        loader = make_loader(LoaderConfig(shards, batch_size=256, num_workers=num_workers, shuffle_buffer=0,
                                          drop_last=False, epochs=1), processors, specs=specs)
        batches = []
        with progress_bar(disable=not show_progress) as progress:
            task = progress.add_task("decoding the training set", total=None, unit="examples")
            for batch in loader:
                batches.append(batch)
                progress.advance(task, len(batch["key"]))
        keys = [k for b in batches for k in b["key"]]
        if not keys:
            raise InputError("data.shards", f"{shards!r} gave no decodable examples ({loader.stats})",
                             "shards with usable samples")
        if len(set(keys)) != len(keys):
            raise InputError("data.shards", f"{shards!r} holds duplicate keys", "one sample per key")
        order = torch.tensor(sorted(range(len(keys)), key=keys.__getitem__))
        tensors, rows = {}, {}
        for m in processors:
            values = torch.cat([b[m] for b in batches])[order]
            present = torch.cat([b[f"{m}_mask"] for b in batches])[order]
            tensors[m] = values[present].contiguous()
            rows[m] = torch.where(present, present.long().cumsum(0) - 1, -1)
        return cls([keys[i] for i in order], tensors, rows)

    def select(self, keys: Sequence[str] = (), skip: Sequence[str] = ()) -> DecodedSet:
        """The examples whose key matches one of `keys` (fnmatch; all when empty) and none of `skip`: train on a
        part of a set (e.g. only its sounds) without rewriting its shards. Refuses a selection that keeps nothing."""
        if not keys and not skip:
            return self
        kept = [i for i, k in enumerate(self.keys) if (not keys or any(fnmatchcase(k, p) for p in keys))
                and not any(fnmatchcase(k, p) for p in skip)]
        if not kept:
            raise InputError("data.keys", f"keys {list(keys)} without {list(skip)} match none of the "
                             f"{len(self.keys)} examples", "patterns that match some keys, e.g. 'note-*'")
        index = torch.tensor(kept, dtype=torch.long)
        tensors, rows = {}, {}
        for m, values in self.tensors.items():
            old = self.rows[m][index]
            present = old >= 0
            tensors[m] = values[old[present]].contiguous()
            rows[m] = torch.where(present, present.long().cumsum(0) - 1, -1)
        return DecodedSet([self.keys[i] for i in kept], tensors, rows)

    def gather(self, indices: torch.Tensor) -> dict[str, Any]:
        """The batch dict (inputs, `<m>_mask`, `key`) of the examples at `indices`, zeros where absent."""
        batch: dict[str, Any] = {"key": [self.keys[i] for i in indices.tolist()]}
        for m, values in self.tensors.items():
            rows = self.rows[m][indices]
            present = rows >= 0
            out = values.new_zeros((len(indices), *values.shape[1:]))
            out[present] = values[rows[present]]
            batch[m], batch[f"{m}_mask"] = out, present
        return batch


class CachedBatches(GlobalBatches):
    """Global batch k is a pure function of (seed, k): epochs are seeded permutations of the set, laid end
    to end, and batch k takes the next `global_batch` of them (crossing epoch ends, dropping nothing)."""

    def __init__(self, data: DecodedSet, global_batch: int, seed: int = 0, rank: int = 0, world_size: int = 1) -> None:
        super().__init__(global_batch, seed, rank, world_size)
        self.data = data
        self._permutations: dict[int, torch.Tensor] = {}

    def _permutation(self, epoch: int) -> torch.Tensor:
        if epoch not in self._permutations:
            self._permutations = {epoch: torch.randperm(len(self.data), generator=torch.Generator().manual_seed(
                self.seed * 1_000_003 + epoch))}  # batches only move forward: keep one
        return self._permutations[epoch]

    def indices(self, index: int) -> torch.Tensor:
        """The example indices of global batch `index`."""
        n, start = len(self.data), index * self.global_batch
        parts, position = [], start
        while position < start + self.global_batch:
            epoch, offset = divmod(position, n)
            take = min(n - offset, start + self.global_batch - position)
            parts.append(self._permutation(epoch)[offset:offset + take])
            position += take
        return torch.cat(parts)

    def batch(self, index: int) -> dict[str, Any]:
        """This rank's slice of global batch `index`."""
        return self.data.gather(self.indices(index)[self.local_rows])

    def identity(self) -> dict[str, Any]:
        """The seed and the size of the decoded set."""
        return {"seed": self.seed, "examples": len(self.data)}
