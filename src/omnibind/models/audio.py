"""Audio tower: log-mel spectrogram patches through the shared encoder, pooled like an image."""

from __future__ import annotations

import torch
from torch import nn

from omnibind.modalities.audio import AudioConfig
from omnibind.models.heads import make_pool, make_projection
from omnibind.models.patches import PatchEmbed
from omnibind.models.transformer import Encoder


class Model(nn.Module):
    """(B, n_mels, frames) log-mel features → (B, embed_dim); other clip lengths resample positions."""

    def __init__(self, config: AudioConfig, embed_dim: int) -> None:
        super().__init__()
        self.config = config
        p = config.patch_size
        grid = (config.front_end.n_mels // p, config.num_frames // p)
        self.patch_embed = PatchEmbed(1, config.width, p, grid)
        self.encoder = Encoder(config.width, config.depth, config.heads, config.mlp_dim, config.eps)
        self.pool = make_pool(config.pool, config.width, config.heads, config.mlp_dim, config.eps)
        self.proj = make_projection(config.width, embed_dim, config.projection)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.head(self.tokens(mel))

    def tokens(self, mel: torch.Tensor) -> torch.Tensor:
        """Per-patch features after the final norm (B, patches, width), before pooling."""
        p = self.config.patch_size
        frames = mel.shape[-1] - mel.shape[-1] % p  # drop a trailing partial patch
        return self.encoder(self.patch_embed(mel[..., :frames].unsqueeze(1)))

    def head(self, tokens: torch.Tensor) -> torch.Tensor:
        """Pool the patches into one vector per example and project it to the shared space."""
        return self.proj(self.pool(tokens))
