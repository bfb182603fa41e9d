"""A Gemma-architecture decoder: pre-RMSNorm blocks of grouped-query attention with rotary positions and a
GeGLU MLP; embeddings scaled by √width and tied to the output logits."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from omnibind.generation.cache import KVCache
from omnibind.generation.config import DecoderConfig
from omnibind.generation.layers import GeGLU, RMSNorm, Rotary, rotate


class Attention(nn.Module):
    """Grouped-query self-attention (kv_heads < heads share keys/values), optionally through a KV cache."""

    def __init__(self, config: DecoderConfig, layer: int) -> None:
        super().__init__()
        self.layer, self.heads, self.kv_heads, self.head_dim = layer, config.heads, config.kv_heads, config.head_dim
        self.q = nn.Linear(config.width, config.heads * config.head_dim, bias=False)
        self.k = nn.Linear(config.width, config.kv_heads * config.head_dim, bias=False)
        self.v = nn.Linear(config.width, config.kv_heads * config.head_dim, bias=False)
        self.out = nn.Linear(config.heads * config.head_dim, config.width, bias=False)

    def forward(self, x: torch.Tensor, rotary: tuple[torch.Tensor, torch.Tensor], mask: torch.Tensor,
                cache: KVCache | None) -> torch.Tensor:
        b, n, _ = x.shape
        q = self.q(x).view(b, n, self.heads, self.head_dim).transpose(1, 2)
        k = self.k(x).view(b, n, self.kv_heads, self.head_dim).transpose(1, 2)
        v = self.v(x).view(b, n, self.kv_heads, self.head_dim).transpose(1, 2)
        q, k = rotate(q, *rotary), rotate(k, *rotary)
        if cache is not None:
            k, v = cache.update(self.layer, k, v)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=self.kv_heads != self.heads)
        out: torch.Tensor = self.out(y.transpose(1, 2).reshape(b, n, self.heads * self.head_dim))
        return out


class Block(nn.Module):
    """x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, config: DecoderConfig, layer: int) -> None:
        super().__init__()
        self.attn_norm = RMSNorm(config.width, config.eps)
        self.attn = Attention(config, layer)
        self.mlp_norm = RMSNorm(config.width, config.eps)
        self.mlp = GeGLU(config.width, config.mlp_dim)

    def forward(self, x: torch.Tensor, rotary: tuple[torch.Tensor, torch.Tensor], mask: torch.Tensor,
                cache: KVCache | None) -> torch.Tensor:
        x = x + self.attn(self.attn_norm(x), rotary, mask, cache)
        out: torch.Tensor = x + self.mlp(self.mlp_norm(x))
        return out


class Decoder(nn.Module):
    """Token embeddings (scaled by √width when read, tied to the logits), blocks and a final RMSNorm."""

    def __init__(self, config: DecoderConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.width)
        self.blocks = nn.ModuleList(Block(config, i) for i in range(config.depth))
        self.norm = RMSNorm(config.width, config.eps)
        self.rotary = Rotary(config.head_dim, config.rope_theta)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Gemma's initialisation for training from scratch: N(0, 0.02) matrices, zero norm weights."""
        for module in self.modules():
            if isinstance(module, nn.Linear | nn.Embedding):
                nn.init.normal_(module.weight, std=0.02)
            elif isinstance(module, RMSNorm):
                nn.init.zeros_(module.weight)

    def embed_tokens(self, ids: torch.Tensor) -> torch.Tensor:
        """(B, L) ids → (B, L, width) embeddings times √width (the scale rounded to the weights' dtype)."""
        weight = self.embed.weight
        out: torch.Tensor = self.embed(ids) * torch.tensor(math.sqrt(self.config.width), dtype=weight.dtype)
        return out

    def forward(self, x: torch.Tensor, positions: torch.Tensor, mask: torch.Tensor,
                cache: KVCache | None = None) -> torch.Tensor:
        """(B, L, width) inputs at (B, L) positions, attending as the (B, 1, L, K) mask allows → hidden states
        after the final norm; with a cache, its K - L earlier positions are attended to and L are added."""
        rotary = self.rotary(positions, x.dtype)
        for block in self.blocks:
            x = block(x, rotary, mask, cache)
        if cache is not None:
            cache.advance(x.shape[1])
        out: torch.Tensor = self.norm(x)
        return out

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Next-token logits from hidden states, through the tied embedding matrix."""
        return F.linear(hidden, self.embed.weight)
