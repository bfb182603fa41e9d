"""The decoder's input: per-example prefix pieces (media tokens, then prompt tokens) left-padded into one batch,
with the padding mask, positions and the prefix / suffix split the prefix-LM mask needs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

FIRST_POSITION = 1
"""PaliGemma numbers positions from 1; padding gets position 1 as well (it is never attended to)."""


@dataclass
class DecoderInput:
    """A left-padded batch of embeddings: `valid` marks real positions, `prefix` those of the prefix."""

    embeds: torch.Tensor  # (B, L, width)
    valid: torch.Tensor  # (B, L) bool
    prefix: torch.Tensor  # (B, L) bool

    @property
    def positions(self) -> torch.Tensor:
        """(B, L) rotary positions: real positions counted from FIRST_POSITION; padding at FIRST_POSITION."""
        return positions(self.valid)


def positions(valid: torch.Tensor) -> torch.Tensor:
    """Positions of real tokens counted from FIRST_POSITION in each row, as transformers' generate numbers them."""
    return (valid.long().cumsum(1) - 1).clamp(min=0) + FIRST_POSITION


def left_pad(pieces: Sequence[Sequence[torch.Tensor]]) -> DecoderInput:
    """Each example's (n_i, width) pieces concatenated, then left-padded with zeros to the longest; all prefix."""
    rows = [torch.cat(list(p), dim=0) for p in pieces]
    if not rows:
        raise ValueError("left_pad: no examples")
    longest = max(r.shape[0] for r in rows)
    if longest == 0:
        raise ValueError("left_pad: every prefix is empty (expected media or a prompt)")
    first = rows[0]
    embeds = first.new_zeros((len(rows), longest, first.shape[1]))
    valid = torch.zeros((len(rows), longest), dtype=torch.bool, device=first.device)
    for i, row in enumerate(rows):
        if row.shape[0]:
            embeds[i, longest - row.shape[0]:] = row
            valid[i, longest - row.shape[0]:] = True
    return DecoderInput(embeds, valid, torch.ones_like(valid))


def append_suffix(prefix: DecoderInput, embeds: torch.Tensor, valid: torch.Tensor | None = None) -> DecoderInput:
    """The prefix followed by (B, S, width) suffix embeddings (right-padded where `valid` is False)."""
    b, s = embeds.shape[:2]
    if valid is None:
        valid = torch.ones((b, s), dtype=torch.bool, device=embeds.device)
    return DecoderInput(
        torch.cat([prefix.embeds, embeds.to(prefix.embeds.dtype)], dim=1),
        torch.cat([prefix.valid, valid.bool()], dim=1),
        torch.cat([prefix.prefix, torch.zeros_like(valid, dtype=torch.bool)], dim=1),
    )
