"""Image tower: a ViT with patch embedding, pre-LN encoder, pooling and an optional projection."""

from __future__ import annotations

import torch
from torch import nn

from omnibind.modalities.image import ImageConfig
from omnibind.models.heads import make_pool, make_projection
from omnibind.models.patches import PatchEmbed
from omnibind.models.transformer import Encoder


class Model(nn.Module):
    """(B, 3, H, W) pixels in [-1, 1] → (B, embed_dim) unnormalised embeddings."""

    def __init__(self, config: ImageConfig, embed_dim: int) -> None:
        super().__init__()
        self.config = config
        side = config.image_size // config.patch_size
        self.patch_embed = PatchEmbed(config.channels, config.width, config.patch_size, (side, side))
        self.encoder = Encoder(config.width, config.depth, config.heads, config.mlp_dim, config.eps)
        self.pool = make_pool(config.pool, config.width, config.heads, config.mlp_dim, config.eps)
        self.proj = make_projection(config.width, embed_dim, config.projection)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.head(self.tokens(pixels))

    def tokens(self, pixels: torch.Tensor) -> torch.Tensor:
        """Per-patch features after the final norm (B, patches, width), before pooling."""
        return self.encoder(self.patch_embed(pixels))

    def head(self, tokens: torch.Tensor) -> torch.Tensor:
        """Pool the tokens into one vector per example and project it to the shared space."""
        return self.proj(self.pool(tokens))
