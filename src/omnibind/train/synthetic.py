"""Learnable synthetic batches for tests and smoke runs: each example belongs to one of K hidden
classes, and every modality carries a noisy class prototype, so matching pairs can be learned."""

from __future__ import annotations

from typing import Any

import torch

import omnibind.modalities as registry
from omnibind.config import ModelConfig
from omnibind.data.batches import GlobalBatches


class SyntheticBatches(GlobalBatches):
    """Batch k of the global stream is a pure function of (seed, k); rank r takes its slice of it."""

    def __init__(self, config: ModelConfig, global_batch: int, classes: int = 16, seed: int = 0,
                 missing: float = 0.0, rank: int = 0, world_size: int = 1) -> None:
        super().__init__(global_batch, seed, rank, world_size)
        self.config, self.classes, self.missing = config, classes, missing
        self.prototypes = self._prototypes()

    def _prototypes(self) -> dict[str, torch.Tensor]:
        g = torch.Generator().manual_seed(self.seed)
        return {name: registry.get(name).prototypes(tower, self.classes, g)
                for name, tower in self.config.towers.items()}

    def batch(self, index: int) -> dict[str, Any]:
        """This rank's slice of global batch `index`."""
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + index + 1)
        labels = torch.randint(0, self.classes, (self.global_batch,), generator=g)
        out: dict[str, Any] = {"label": labels}
        for name, proto in self.prototypes.items():
            out[name] = registry.get(name).noisy_copy(proto[labels], g)
            out[f"{name}_mask"] = torch.rand(self.global_batch, generator=g) >= self.missing
        return {k: v[self.local_rows] for k, v in out.items()}

    def identity(self) -> dict[str, Any]:
        """The seed and the number of hidden classes."""
        return {"seed": self.seed, "classes": self.classes}
