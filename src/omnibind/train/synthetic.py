"""Learnable synthetic batches for tests and smoke runs: each example belongs to one of K hidden
classes, and every modality carries a noisy class prototype, so matching pairs can be learned."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch

from omnibind.config import AudioConfig, ImageConfig, ModelConfig, TextConfig


class SyntheticBatches:
    """Batch k of the global stream is a pure function of (seed, k); rank r takes its slice of it, so
    runs with different world sizes see the same global batches. Resumable via state_dict."""

    def __init__(self, config: ModelConfig, global_batch: int, classes: int = 16, seed: int = 0,
                 missing: float = 0.0, rank: int = 0, world_size: int = 1) -> None:
        if global_batch % world_size:
            raise ValueError(f"data.batch_size {global_batch} must be divisible by the world size {world_size}")
        self.config, self.global_batch, self.classes = config, global_batch, classes
        self.seed, self.missing, self.rank, self.world_size = seed, missing, rank, world_size
        self.next_index = 0
        self.prototypes = self._prototypes()

    def _prototypes(self) -> dict[str, torch.Tensor]:
        g = torch.Generator().manual_seed(self.seed)
        protos = {}
        for name, tower in self.config.towers.items():
            if isinstance(tower, ImageConfig):
                size = (self.classes, tower.channels, tower.image_size, tower.image_size)
                protos[name] = torch.randn(size, generator=g)
            elif isinstance(tower, AudioConfig):
                protos[name] = torch.randn(self.classes, tower.n_mels, tower.num_frames, generator=g)
            elif isinstance(tower, TextConfig):
                protos[name] = torch.randint(2, tower.vocab_size, (self.classes, tower.max_len), generator=g)
        return protos

    def batch(self, index: int) -> dict[str, Any]:
        """This rank's slice of global batch `index`."""
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + index + 1)
        labels = torch.randint(0, self.classes, (self.global_batch,), generator=g)
        out: dict[str, Any] = {"label": labels}
        for name, proto in self.prototypes.items():
            if proto.dtype == torch.long:
                noise = torch.randint(2, proto.max().item() + 1, proto[labels].shape, generator=g)
                keep = torch.rand(proto[labels].shape, generator=g) > 0.2
                out[name] = torch.where(keep, proto[labels], noise)
            else:
                out[name] = proto[labels] + torch.randn(proto[labels].shape, generator=g)
            out[f"{name}_mask"] = torch.rand(self.global_batch, generator=g) >= self.missing
        local = slice(self.rank * self.local_batch, (self.rank + 1) * self.local_batch)
        return {k: v[local] for k, v in out.items()}

    @property
    def local_batch(self) -> int:
        """Examples per rank per step."""
        return self.global_batch // self.world_size

    def __iter__(self) -> Iterator[dict[str, Any]]:
        while True:
            batch = self.batch(self.next_index)
            self.next_index += 1
            yield batch

    def state_dict(self) -> dict[str, Any]:
        """The position: the index of the next global batch."""
        return {"next_index": self.next_index}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue right after the last batch yielded before `state_dict()`."""
        self.next_index = int(state["next_index"])
