"""Audio tower: log-mel spectrogram patches through the shared encoder, pooled like an image."""

from __future__ import annotations

import torch
from torch import nn

from omnibind.config import AudioConfig
from omnibind.models.heads import make_pool, make_projection
from omnibind.models.patches import PatchEmbed
from omnibind.models.transformer import Encoder


class Model(nn.Module):
    """(B, n_mels, frames) log-mel features → (B, embed_dim); other clip lengths resample positions."""

    def __init__(self, config: AudioConfig) -> None:
        super().__init__()
        self.config = config
        p = config.patch_size
        grid = (config.n_mels // p, config.num_frames // p)
        self.patch_embed = PatchEmbed(1, config.width, p, grid)
        self.encoder = Encoder(config.width, config.depth, config.heads, config.mlp_dim, config.eps)
        self.pool = make_pool(config.pool, config.width, config.heads, config.mlp_dim, config.eps)
        self.proj = make_projection(config.width, config.embed_dim, config.projection)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        p = self.config.patch_size
        frames = mel.shape[-1] - mel.shape[-1] % p  # drop a trailing partial patch
        x = self.patch_embed(mel[..., :frames].unsqueeze(1))
        return self.proj(self.pool(self.encoder(x)))
