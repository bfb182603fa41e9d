"""OmniBind: a ModuleDict of towers keyed by modality, plus the sigmoid loss's temperature t' and bias b."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

import omnibind.modalities as registry
from omnibind.config import ModelConfig, TowerConfig
from omnibind.errors import InputError

TOKENS_SUFFIX = "/tokens"
"""forward(..., tokens=[m]) returns modality m's token sequence under the key m + TOKENS_SUFFIX."""


def build_tower(config: TowerConfig, embed_dim: int) -> nn.Module:
    """The tower module for a tower config, built by its modality."""
    return registry.for_config(config).build_tower(config, embed_dim)


class OmniBind(nn.Module):
    """Every modality is a tower that maps a preprocessed batch to one unit vector per example.

    `processors` (not modules, not saved in the state dict) turn raw inputs (paths, bytes, strings)
    into tower inputs, so `encode` accepts either raw inputs or ready tensors.
    """

    def __init__(self, config: ModelConfig, processors: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.config = config
        self.towers = nn.ModuleDict({name: build_tower(cfg, config.embed_dim) for name, cfg in config.towers.items()})
        self.logit_scale = nn.Parameter(torch.tensor([config.logit_scale_init]))
        self.logit_bias = nn.Parameter(torch.tensor([config.logit_bias_init]))
        self.processors: dict[str, Any] = dict(processors or {})
        init_weights(self)

    @property
    def modalities(self) -> tuple[str, ...]:
        """Names of the towers this model has."""
        return tuple(self.towers.keys())

    def tower(self, modality: str) -> nn.Module:
        """The tower of one modality, with an error naming the ones that exist."""
        if modality not in self.towers:
            raise InputError(modality, "this model has no such tower", f"one of {', '.join(self.modalities)}")
        return self.towers[modality]

    def train(self, mode: bool = True) -> OmniBind:
        """As nn.Module.train, but a tower with no trainable parameter (locked) stays in eval mode: its batch
        norms keep their statistics and its dropout stays off, so locking a tower leaves it exactly as it was
        (e.g. CLAP's HTSAT as the locked base audio tower of a composed model)."""
        super().train(mode)
        for tower in self.towers.values():
            if not any(p.requires_grad for p in tower.parameters()):
                tower.eval()
        return self

    def forward(self, batch: dict[str, torch.Tensor], tokens: Collection[str] = ()) -> dict[str, torch.Tensor]:
        """Embed every modality present in a batch dict: L2-normalised (B, D) per modality; for the
        modalities in `tokens`, also their (B, N, width) token sequences under "<modality>/tokens"."""
        out: dict[str, torch.Tensor] = {}
        for m in self.modalities:
            if m not in batch:
                continue
            tower = self.towers[m]
            if m in tokens:
                sequence = tower.tokens(batch[m])
                out[m + TOKENS_SUFFIX] = sequence
                out[m] = F.normalize(tower.head(sequence), dim=-1)
            else:
                out[m] = F.normalize(tower(batch[m]), dim=-1)
        return out

    def encode(self, modality: str, inputs: Any, normalize: bool = True) -> torch.Tensor:
        """Embed raw inputs (paths, bytes, PIL images, strings) or a ready tensor batch of one modality."""
        tower = self.tower(modality)
        batch = inputs if isinstance(inputs, torch.Tensor) else self.preprocess(modality, inputs)
        param = next(tower.parameters())
        dtype = param.dtype if batch.is_floating_point() else batch.dtype
        features = tower(batch.to(param.device, dtype))
        return F.normalize(features, dim=-1) if normalize else features

    def preprocess(self, modality: str, inputs: Any) -> torch.Tensor:
        """Turn raw inputs into one tower-ready batch with this model's preprocessor for `modality`."""
        processor = self.processors.get(modality)
        if processor is None:
            raise InputError(modality, "no preprocessor attached", "a model from omnibind.load() or ready tensors")
        items = inputs if isinstance(inputs, Sequence) and not isinstance(inputs, (str, bytes)) else [inputs]
        return processor.batch(items)

    def logits(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Pairwise logits exp(t')·x·yᵀ + b of unit embeddings, as the sigmoid loss scores them."""
        return x @ y.T * self.logit_scale.exp() + self.logit_bias


@torch.no_grad()
def init_weights(model: nn.Module) -> None:
    """big_vision-style initialisation for training from scratch: xavier-uniform linears with zero
    biases, lecun-normal patch embeddings; position and token embeddings are set by their modules."""
    for module in model.modules():
        if isinstance(module, nn.Linear):
            nn.init.xavier_uniform_(module.weight)
        elif isinstance(module, nn.Conv2d):
            fan_in = module.weight[0].numel()
            nn.init.trunc_normal_(module.weight, std=(1 / fan_in) ** 0.5 / 0.87962566103423978)
        if isinstance(module, nn.Linear | nn.Conv2d) and module.bias is not None:  # HTSAT's merging has none
            nn.init.zeros_(module.bias)
