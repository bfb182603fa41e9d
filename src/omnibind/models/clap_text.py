"""CLAP's text tower (kind "roberta"), native: RoBERTa embeddings (positions counted from the pad id, as
fairseq does), post-LN encoder blocks with exact GELU and a padding mask, BERT's pooler (dense + tanh of the
first token) and CLAP's two-layer projection; numerics as transformers' ClapTextModel + text_projection.

The padding mask and the positions are derived from the ids (pad id = padding), so the tower takes one
(B, L) tensor like every omnibind text tower and gives the same embedding however long the padding.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

import omnibind.modalities as registry
from omnibind.errors import InputError
from omnibind.modalities.base import Preprocessor
from omnibind.modalities.text import BPE_TOKENIZER_FILE, TextConfig
from omnibind.models.transformer import Attention

DEFAULT_MAX_POSITIONS = 514  # RoBERTa: 512 tokens + the pad id's offset


class ClapProjection(nn.Module):
    """CLAP's projection into the shared space: linear → ReLU → linear."""

    def __init__(self, width: int, embed_dim: int) -> None:
        super().__init__()
        self.linear1 = nn.Linear(width, embed_dim)
        self.linear2 = nn.Linear(embed_dim, embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear2(F.relu(self.linear1(x)))


class Embeddings(nn.Module):
    """Word + position (from the pad id on) + token-type 0 embeddings, then LayerNorm."""

    def __init__(self, config: TextConfig) -> None:
        super().__init__()
        self.pad_id = config.pad_id
        positions = int(config.options.get("max_positions", DEFAULT_MAX_POSITIONS))
        self.word = nn.Embedding(config.vocab_size, config.width, padding_idx=config.pad_id)
        self.position = nn.Embedding(positions, config.width, padding_idx=config.pad_id)
        self.token_type = nn.Embedding(int(config.options.get("type_vocab_size", 1)), config.width)
        self.norm = nn.LayerNorm(config.width, eps=config.eps)

    def forward(self, ids: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        if ids.shape[-1] + self.pad_id >= self.position.num_embeddings:
            raise InputError(registry.TEXT.name, f"{ids.shape[-1]} tokens",
                             f"at most {self.position.num_embeddings - self.pad_id - 1} (RoBERTa's positions)")
        positions = torch.cumsum(keep.long(), dim=1) * keep.long() + self.pad_id
        return self.norm(self.word(ids) + self.position(positions) + self.token_type.weight[0])


class Block(nn.Module):
    """Post-LN: x = LN(x + attn(x)), then x = LN(x + fc2(gelu(fc1(x))))."""

    def __init__(self, width: int, heads: int, mlp_dim: int, eps: float) -> None:
        super().__init__()
        self.attn = Attention(width, heads)
        self.ln1 = nn.LayerNorm(width, eps=eps)
        self.fc1 = nn.Linear(width, mlp_dim)
        self.fc2 = nn.Linear(mlp_dim, width)
        self.ln2 = nn.LayerNorm(width, eps=eps)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        x = self.ln1(x + self.attn(x, mask))
        return self.ln2(x + self.fc2(F.gelu(self.fc1(x))))


class Encoder(nn.Module):
    """The stack of post-LN blocks (no final norm: each block ends with one)."""

    def __init__(self, config: TextConfig) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            Block(config.width, config.heads, config.mlp_dim, config.eps) for _ in range(config.depth)
        )
        self.grad_checkpointing = False

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            if self.grad_checkpointing and self.training and torch.is_grad_enabled():
                x = checkpoint(block, x, mask, use_reentrant=False)
            else:
                x = block(x, mask)
        return x


class Model(nn.Module):
    """(B, L) RoBERTa token ids → (B, embed_dim): pooled first token, CLAP's projection."""

    def __init__(self, config: TextConfig, embed_dim: int) -> None:
        super().__init__()
        if config.pool != "first":
            raise InputError("towers.text.pool", f"is {config.pool!r}", "'first' (RoBERTa's pooler) for kind roberta")
        self.config = config
        self.embeddings = Embeddings(config)
        self.encoder = Encoder(config)
        self.pooler = nn.Linear(config.width, config.width)
        self.proj = ClapProjection(config.width, embed_dim)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.tokens(ids))

    def tokens(self, ids: torch.Tensor) -> torch.Tensor:
        """Last hidden states (B, L, width); padding positions are masked out of attention."""
        keep = ids != self.config.pad_id
        mask = keep[:, None, None, :]  # (B, 1, 1, L): every query attends to the non-pad keys
        return self.encoder(self.embeddings(ids, keep), mask)

    def head(self, tokens: torch.Tensor) -> torch.Tensor:
        """BERT's pooler on the first (<s>) token, then CLAP's projection."""
        return self.proj(torch.tanh(self.pooler(tokens[:, 0])))


def build_preprocessor(config: TextConfig, assets: dict[str, Path]) -> Preprocessor | None:
    """The byte-level BPE tokenizer of the checkpoint's tokenizer.json (None when it has none)."""
    from omnibind.preprocess.bpe import BPETokenizer

    file = assets.get(BPE_TOKENIZER_FILE)
    return None if file is None else BPETokenizer(file, config.max_len, config.pad_id)
