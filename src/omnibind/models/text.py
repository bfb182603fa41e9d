"""Text tower: token + position embeddings, pre-LN encoder, last-token pooling and a linear head."""

from __future__ import annotations

import torch
from torch import nn

from omnibind.modalities.text import TextConfig
from omnibind.models.heads import make_pool, make_projection
from omnibind.models.transformer import Encoder


class Model(nn.Module):
    """(B, L) token ids → (B, embed_dim) unnormalised embeddings; no attention mask, as in SigLIP."""

    def __init__(self, config: TextConfig, embed_dim: int) -> None:
        super().__init__()
        self.config = config
        self.token_embed = nn.Embedding(config.vocab_size, config.width)
        self.pos_embed = nn.Parameter(torch.randn(1, config.max_len, config.width) * config.width**-0.5)
        self.encoder = Encoder(config.width, config.depth, config.heads, config.mlp_dim, config.eps)
        self.pool = make_pool(config.pool, config.width, config.heads, config.mlp_dim, config.eps)
        self.proj = make_projection(config.width, embed_dim, config.projection)
        nn.init.normal_(self.token_embed.weight, std=config.width**-0.5)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.tokens(ids))

    def tokens(self, ids: torch.Tensor) -> torch.Tensor:
        """Per-token features after the final norm (B, L, width), before pooling."""
        length = ids.shape[-1]
        if length > self.config.max_len:
            raise ValueError(f"text: {length} tokens but the model takes at most max_len={self.config.max_len}")
        return self.encoder(self.token_embed(ids) + self.pos_embed[:, :length])

    def head(self, tokens: torch.Tensor) -> torch.Tensor:
        """Pool at the last position and project to the shared space."""
        return self.proj(self.pool(tokens))
