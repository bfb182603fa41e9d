"""Pooling heads (multihead attention pooling, mean pooling) and the projection to the shared space."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from omnibind.models.transformer import MLP


class MAPHead(nn.Module):
    """Multihead attention pooling (big_vision's MAP head): a learned probe attends over the tokens."""

    def __init__(self, width: int, heads: int, mlp_dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.heads = heads
        self.probe = nn.Parameter(torch.zeros(1, 1, width))
        self.q = nn.Linear(width, width)
        self.kv = nn.Linear(width, 2 * width)
        self.out = nn.Linear(width, width)
        self.norm = nn.LayerNorm(width, eps=eps)
        self.mlp = MLP(width, mlp_dim)
        nn.init.xavier_uniform_(self.probe.view(1, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        h, hd = self.heads, d // self.heads
        q = self.q(self.probe).view(1, h, 1, hd).expand(b, -1, -1, -1)
        k, v = self.kv(x).view(b, n, 2, h, hd).permute(2, 0, 3, 1, 4).unbind(0)
        y = self.out(F.scaled_dot_product_attention(q, k, v).reshape(b, d))
        return y + self.mlp(self.norm(y))


class MeanPool(nn.Module):
    """Global average pooling over tokens."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=1)


class LastTokenPool(nn.Module):
    """The last position's features, as SigLIP's text tower pools."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, -1]


def make_pool(kind: str, width: int, heads: int, mlp_dim: int, eps: float) -> nn.Module:
    """Build the pooling named in a tower config: "map", "gap" or "last"."""
    if kind == "map":
        return MAPHead(width, heads, mlp_dim, eps)
    if kind == "gap":
        return MeanPool()
    if kind == "last":
        return LastTokenPool()
    raise ValueError(f"pool: unknown pooling {kind!r} (expected 'map', 'gap' or 'last')")


def make_projection(width: int, embed_dim: int, enabled: bool) -> nn.Module:
    """A linear map into the shared embedding space, or identity where the tower is already that wide."""
    if enabled:
        return nn.Linear(width, embed_dim)
    if width != embed_dim:
        raise ValueError(f"projection: width {width} differs from embed_dim {embed_dim}; enable projection")
    return nn.Identity()
