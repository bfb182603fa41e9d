"""Learnable synthetic batches for tests and smoke runs: each example belongs to one of K hidden
classes, and every modality carries a noisy class prototype, so matching pairs can be learned."""

from __future__ import annotations

from typing import Any

import torch

from omnibind.config import AudioConfig, ImageConfig, ModelConfig, TextConfig
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
        return {k: v[self.local_rows] for k, v in out.items()}

    def identity(self) -> dict[str, Any]:
        """The seed and the number of hidden classes."""
        return {"seed": self.seed, "classes": self.classes}
