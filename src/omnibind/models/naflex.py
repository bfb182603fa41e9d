"""NaFlex image tower (SigLIP 2's variable resolution and aspect ratio), numerically as transformers'
Siglip2VisionModel: patch-flattened pixels, a patch attention mask, per-image spatial shapes, and the learned
position grid resized to each image's shape (bilinear, antialiased) before it is added.

A NaFlex batch is one fixed-shape float tensor, so every path that moves image batches (encode, the data loader,
evaluation, search, ONNX export) carries it unchanged. Each example is (max_patches, C·p·p + 2): the rows are
the image's patches in row-major order followed by zero padding, as transformers' processor lays them out; the
last two columns hold the patch grid's height and width in unary (row i holds 1 where i < height, and 1 where
i < width), which survives a cast to bfloat16 and needs no side channel. The patch mask is derived: the first
height × width rows are patches. An all-zero example (an absent input the data loader zero-filled) reads as a
1 × 1 grid, so it yields finite values instead of attending to nothing.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from omnibind.modalities.image import ImageConfig
from omnibind.models.heads import MAPHead, make_projection
from omnibind.models.transformer import Encoder

SHAPE_COLUMNS = 2  # unary patch-grid height and width, after the pixel columns


def patch_dim(config: ImageConfig) -> int:
    """Pixel values per flattened patch (C · p · p), as transformers' processor flattens them."""
    return config.channels * config.patch_size * config.patch_size


def pack(patches: torch.Tensor, height: int, width: int, max_patches: int) -> torch.Tensor:
    """One example's packed tensor: (height·width, C·p·p) patches padded to `max_patches` rows, plus the unary
    height and width columns."""
    count, dim = patches.shape
    if count != height * width or not 1 <= count <= max_patches:
        raise ValueError(f"naflex: {count} patches for a {height}×{width} grid (expected 1..{max_patches})")
    out = torch.zeros(max_patches, dim + SHAPE_COLUMNS, dtype=patches.dtype)
    out[:count, :dim] = patches
    rows = torch.arange(max_patches)
    out[:, dim] = (rows < height).to(patches.dtype)
    out[:, dim + 1] = (rows < width).to(patches.dtype)
    return out


def unpack(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(B, N, C·p·p + 2) packed inputs → patches (B, N, C·p·p), spatial shapes (B, 2) int64 (at least 1 × 1)
    and the patch mask (B, N) bool, True on real patches."""
    patches, unary = x[..., :-SHAPE_COLUMNS], x[..., -SHAPE_COLUMNS:]
    shapes = (unary > 0.5).sum(dim=1).clamp(min=1)
    count = shapes.prod(dim=-1, keepdim=True)
    mask = torch.arange(x.shape[1], device=x.device)[None, :] < count
    return patches, shapes, mask


def resize_positions(grid: torch.Tensor, shapes: torch.Tensor, length: int) -> torch.Tensor:
    """Position embeddings (S, S, D) resized to each image's (height, width) patch grid, flattened row-major and
    padded to `length` with the first position: (B, length, D). The weights are those of
    F.interpolate(mode="bilinear", align_corners=False, antialias=True) along each axis, written as one matrix
    product so that it runs batched and exports to ONNX; transformers computes it the same way, in float32."""
    side = grid.shape[0]
    sizes = shapes.float()[:, None, :]  # (B, 1, 2)
    positions = torch.arange(length, device=shapes.device, dtype=torch.float32)[None, :, None]
    rows = torch.div(positions, sizes[..., 1:], rounding_mode="floor")
    index = torch.cat([rows, positions - rows * sizes[..., 1:]], dim=-1)  # (B, length, 2): row, column
    index = index * (positions < sizes.prod(dim=-1, keepdim=True))  # padding takes position (0, 0)
    scale = side / sizes
    support = scale.clamp(min=1)
    center = (index + 0.5) * scale - 0.5
    source = torch.arange(side, device=shapes.device, dtype=torch.float32)
    weights = (1 - (source - center[..., None]).abs() / support[..., None]).clamp(min=0)  # (B, length, 2, S)
    weights = weights / weights.sum(dim=-1, keepdim=True)
    weights = (weights[..., 0, :, None] * weights[..., 1, None, :]).flatten(-2)  # (B, length, S·S)
    return (weights @ grid.reshape(side * side, -1).float()).to(grid.dtype)


class NaFlexEmbed(nn.Module):
    """Linear embedding of flattened patches plus the learned position grid resized to each image."""

    def __init__(self, config: ImageConfig) -> None:
        super().__init__()
        side = config.image_size // config.patch_size
        self.grid = (side, side)
        self.proj = nn.Linear(patch_dim(config), config.width)
        self.pos_embed = nn.Parameter(torch.randn(1, side * side, config.width) * config.width**-0.5)

    def forward(self, patches: torch.Tensor, shapes: torch.Tensor) -> torch.Tensor:
        x = self.proj(patches.to(self.proj.weight.dtype))
        grid = self.pos_embed.reshape(self.grid[0], self.grid[1], -1)
        return x + resize_positions(grid, shapes, patches.shape[1]).to(x.dtype)


class MaskedMAPHead(MAPHead):
    """Multihead attention pooling over the real patches only (transformers' key_padding_mask)."""

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        b, n, d = x.shape
        h, hd = self.heads, d // self.heads
        q = self.q(self.probe).view(1, h, 1, hd).expand(b, -1, -1, -1)
        k, v = self.kv(x).view(b, n, 2, h, hd).permute(2, 0, 3, 1, 4).unbind(0)
        attn_mask = None if mask is None else mask[:, None, None, :]
        y = self.out(F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask).reshape(b, d))
        return y + self.mlp(self.norm(y))


class MaskedMeanPool(nn.Module):
    """Mean of the real patches' features."""

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if mask is None:
            return x.mean(dim=1)
        weights = mask.to(x.dtype)[..., None]
        return (x * weights).sum(dim=1) / weights.sum(dim=1)


class Model(nn.Module):
    """(B, max_patches, C·p·p + 2) packed NaFlex inputs → (B, embed_dim) unnormalised embeddings."""

    def __init__(self, config: ImageConfig, embed_dim: int) -> None:
        super().__init__()
        if config.image_size % config.patch_size or config.image_size < config.patch_size:
            raise ValueError(f"image_size: {config.image_size} is not a multiple of patch_size {config.patch_size}")
        self.config = config
        self.patch_embed = NaFlexEmbed(config)
        self.encoder = Encoder(config.width, config.depth, config.heads, config.mlp_dim, config.eps)
        self.pool: nn.Module
        if config.pool == "map":
            self.pool = MaskedMAPHead(config.width, config.heads, config.mlp_dim, config.eps)
        elif config.pool == "gap":
            self.pool = MaskedMeanPool()
        else:
            raise ValueError(f"pool: {config.pool!r} is not supported by the NaFlex tower (expected 'map' or 'gap')")
        self.proj = make_projection(config.width, embed_dim, config.projection)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens, mask = self._encode(x)
        return self.proj(self.pool(tokens, mask))

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """Per-patch features after the final norm (B, max_patches, width); padding rows are zero."""
        tokens, mask = self._encode(x)
        return tokens * mask[..., None].to(tokens.dtype)

    def head(self, tokens: torch.Tensor) -> torch.Tensor:
        """Pool `tokens()` output over its real patches (the non-zero rows) and project it."""
        mask = tokens.ne(0).any(dim=-1)
        mask[:, 0] = True  # an all-padding example still pools its first row, as forward() does
        return self.proj(self.pool(tokens, mask))

    def _encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder output over every row (B, N, width) and the patch mask (B, N)."""
        expected = patch_dim(self.config) + SHAPE_COLUMNS
        if x.dim() != 3 or x.shape[-1] != expected:
            raise ValueError(f"naflex image: input of shape {tuple(x.shape)} (expected (batch, patches, {expected}):"
                             " packed patches and unary shapes, as the NaFlex preprocessor makes them)")
        patches, shapes, mask = unpack(x)
        tokens = self.encoder(self.patch_embed(patches, shapes), mask[:, None, None, :])
        return tokens, mask
