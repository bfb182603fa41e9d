"""Whisper's audio encoder as an audio tower (kind "whisper"): a native copy of transformers' WhisperEncoder
(two GELU convolutions, fixed sinusoidal positions, pre-LN blocks with exact GELU, final LayerNorm; same
numerics), followed by omnibind's pooling head and projection, which are new and trained.

Whisper reads Whisper log-mel features, which is omnibind's default audio front end, so the preprocessor is
the stock one with the checkpoint's `n_mels` and 30 s clips. transformers insists on exactly
`2 × max_positions` frames (30 s); this tower also takes shorter clips and uses the first positions for them
(the usual way to fine-tune Whisper's encoder on short audio), which transformers cannot compare against.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

import omnibind.modalities as registry
from omnibind.errors import InputError
from omnibind.modalities.audio import AudioConfig
from omnibind.models.heads import make_pool, make_projection
from omnibind.models.transformer import Attention

DEFAULT_MAX_POSITIONS = 1500  # every released Whisper: 30 s of 10 ms frames, halved by the strided conv


def sinusoids(length: int, channels: int, max_timescale: float = 10000.0) -> torch.Tensor:
    """Whisper's fixed position table (length, channels): sines then cosines of geometric timescales."""
    if channels % 2:
        raise InputError("towers.audio.width", f"is odd ({channels})", "an even width (Whisper's positions)")
    increment = math.log(max_timescale) / (channels // 2 - 1)
    inverse = torch.exp(-increment * torch.arange(channels // 2, dtype=torch.float32))
    scaled = torch.arange(length, dtype=torch.float32)[:, None] * inverse[None, :]
    return torch.cat([scaled.sin(), scaled.cos()], dim=1)


class MLP(nn.Module):
    """fc1 → exact (erf) GELU → fc2, as Whisper's feed-forward."""

    def __init__(self, width: int, mlp_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(width, mlp_dim)
        self.fc2 = nn.Linear(mlp_dim, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    """x + attn(LN(x)), then x + mlp(LN(x)); the key projection's bias (absent in Whisper) is held at zero."""

    def __init__(self, width: int, heads: int, mlp_dim: int, eps: float) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(width, eps=eps)
        self.attn = Attention(width, heads)
        self.ln2 = nn.LayerNorm(width, eps=eps)
        self.mlp = MLP(width, mlp_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class Encoder(nn.Module):
    """Whisper's encoder: (B, n_mels, frames) log-mel → (B, ceil(frames / 2), width) after the final norm."""

    pos_embed: torch.Tensor

    def __init__(self, config: AudioConfig) -> None:
        super().__init__()
        width = config.width
        self.max_positions = int(config.options.get("max_positions", DEFAULT_MAX_POSITIONS))
        self.conv1 = nn.Conv1d(config.front_end.n_mels, width, kernel_size=3, padding=1)
        self.conv2 = nn.Conv1d(width, width, kernel_size=3, stride=2, padding=1)
        # Whisper never trains its positions; a buffer keeps them in checkpoints and out of the optimizer.
        self.register_buffer("pos_embed", sinusoids(self.max_positions, width))
        self.blocks = nn.ModuleList(Block(width, config.heads, config.mlp_dim, config.eps) for _ in range(config.depth))
        self.norm = nn.LayerNorm(width, eps=config.eps)
        self.grad_checkpointing = False

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        frames = mel.shape[-1]
        if frames > 2 * self.max_positions:
            raise InputError(registry.AUDIO.name, f"{frames} log-mel frames",
                             f"at most {2 * self.max_positions} (Whisper's 30 s window)")
        x = F.gelu(self.conv2(F.gelu(self.conv1(mel)))).transpose(1, 2)
        x = x + self.pos_embed[: x.shape[1]].to(x.dtype)
        for block in self.blocks:
            if self.grad_checkpointing and self.training and torch.is_grad_enabled():
                x = checkpoint(block, x, use_reentrant=False)
            else:
                x = block(x)
        return self.norm(x)


class Model(nn.Module):
    """Whisper encoder + pooling ("map" or "gap") + projection: (B, n_mels, frames) → (B, embed_dim)."""

    def __init__(self, config: AudioConfig, embed_dim: int) -> None:
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.pool = make_pool(config.pool, config.width, config.heads, config.mlp_dim, config.eps)
        self.proj = make_projection(config.width, embed_dim, config.projection)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.head(self.tokens(mel))

    def tokens(self, mel: torch.Tensor) -> torch.Tensor:
        """Whisper's encoder hidden states (B, frames / 2, width), before pooling."""
        return self.encoder(mel)

    def head(self, tokens: torch.Tensor) -> torch.Tensor:
        """Pool the frames into one vector per example and project it to the shared space."""
        return self.proj(self.pool(tokens))


def summary(config: AudioConfig) -> str:
    """How `omnibind info` describes this tower."""
    return f"Whisper encoder ({config.depth} layers, width {config.width}), {config.pool} pooling"
