"""Patch embedding with learned position embeddings on a 2-D grid, resampled for other input sizes."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PatchEmbed(nn.Module):
    """Cut a (B, C, H, W) tensor into non-overlapping patches, embed them and add grid positions."""

    def __init__(self, channels: int, width: int, patch: int, grid: tuple[int, int]) -> None:
        super().__init__()
        self.patch = patch
        self.grid = grid
        self.proj = nn.Conv2d(channels, width, kernel_size=patch, stride=patch)
        self.pos_embed = nn.Parameter(torch.randn(1, grid[0] * grid[1], width) * width**-0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.proj(x)
        grid = (x.shape[-2], x.shape[-1])
        # contiguous: otherwise the sum keeps the conv's transposed strides, and every block after it pays for
        # them (LayerNorm copies its input, residual adds run strided); the values are the same either way
        return x.flatten(2).transpose(1, 2).contiguous() + self.positions(grid).to(x.dtype)

    def positions(self, grid: tuple[int, int]) -> torch.Tensor:
        """Position embeddings for a grid, bicubically resampled when it differs from the trained one."""
        if grid == self.grid:
            return self.pos_embed
        return resample_positions(self.pos_embed, self.grid, grid)

    def resize(self, grid: tuple[int, int]) -> None:
        """Permanently resample the position embeddings to a new grid (e.g. to fine-tune at 384 px)."""
        self.pos_embed = nn.Parameter(resample_positions(self.pos_embed.detach(), self.grid, grid))
        self.grid = grid


def resample_positions(pos: torch.Tensor, old: tuple[int, int], new: tuple[int, int]) -> torch.Tensor:
    """Bicubic resampling of (1, old_h*old_w, D) embeddings to (1, new_h*new_w, D), as transformers does."""
    d = pos.shape[-1]
    grid = pos.reshape(1, old[0], old[1], d).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=new, mode="bicubic", align_corners=False)
    return grid.permute(0, 2, 3, 1).reshape(1, new[0] * new[1], d)
