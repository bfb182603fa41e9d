"""Gemma's building blocks: RMSNorm with (1 + w) scaling, the GeGLU MLP and rotary position embeddings."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class RMSNorm(nn.Module):
    """x / rms(x) · (1 + w), computed in float32 and cast back (Gemma stores w centred on zero)."""

    def __init__(self, width: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.zeros(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.float()
        y = y * torch.rsqrt(y.pow(2).mean(-1, keepdim=True) + self.eps)
        return (y * (1.0 + self.weight.float())).type_as(x)


class GeGLU(nn.Module):
    """down(gelu_tanh(gate(x)) · up(x)), without biases."""

    def __init__(self, width: int, mlp_dim: int) -> None:
        super().__init__()
        self.gate = nn.Linear(width, mlp_dim, bias=False)
        self.up = nn.Linear(width, mlp_dim, bias=False)
        self.down = nn.Linear(mlp_dim, width, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.down(F.gelu(self.gate(x), approximate="tanh") * self.up(x))
        return out


class Rotary(nn.Module):
    """cos / sin tables of rotary embeddings for integer positions (half-split layout, as Gemma uses)."""

    inv_freq: torch.Tensor

    def __init__(self, head_dim: int, theta: float) -> None:
        super().__init__()
        exponent = torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim
        self.register_buffer("inv_freq", 1.0 / (theta**exponent), persistent=False)

    def forward(self, positions: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, L) positions → cos, sin of shape (B, 1, L, head_dim), broadcastable over heads."""
        freqs = positions[..., None].float() * self.inv_freq.to(positions.device)
        angles = torch.cat((freqs, freqs), dim=-1)[:, None]
        return angles.cos().to(dtype), angles.sin().to(dtype)


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Apply rotary embeddings to (B, heads, L, head_dim) queries or keys."""
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos + rotated * sin
