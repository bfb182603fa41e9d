"""Incremental decoding: run the prefix once, then one token per step through the KV cache."""

from __future__ import annotations

import torch

from omnibind.generation.cache import KVCache
from omnibind.generation.decoder import Decoder
from omnibind.generation.mask import prefix_lm_mask
from omnibind.generation.prefix import DecoderInput, positions


class Session:
    """Next-token logits for a batch of prefixes, one step at a time; rows can be re-selected (beam search)."""

    def __init__(self, decoder: Decoder, prefix: DecoderInput, max_new_tokens: int) -> None:
        self.decoder = decoder
        self.prefix = prefix
        batch, length = prefix.valid.shape
        self.cache = KVCache(decoder.config, batch, length + max_new_tokens, prefix.embeds.dtype,
                             prefix.embeds.device)
        self.valid = prefix.valid
        self.next_position = positions(prefix.valid)[:, -1:] + 1

    @torch.no_grad()
    def start(self) -> torch.Tensor:
        """(B, vocab) float32 logits after the whole prefix (full attention inside it)."""
        p = self.prefix
        mask = prefix_lm_mask(p.valid, p.prefix, p.prefix)
        hidden = self.decoder(p.embeds, p.positions, mask, self.cache)
        return self.decoder.logits(hidden[:, -1]).float()

    @torch.no_grad()
    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        """Feed one (B,) token per row as suffix; (B, vocab) float32 logits for the next one."""
        ones = torch.ones_like(tokens, dtype=torch.bool)[:, None]
        self.valid = torch.cat([self.valid, ones], dim=1)
        mask = self.valid[:, None, None, :]
        hidden = self.decoder(self.decoder.embed_tokens(tokens[:, None]), self.next_position, mask, self.cache)
        self.next_position = self.next_position + 1
        return self.decoder.logits(hidden[:, -1]).float()

    def select(self, rows: torch.Tensor) -> None:
        """Keep, reorder or repeat batch rows (their cache, padding and positions)."""
        self.cache.select(rows)
        self.valid = self.valid.index_select(0, rows)
        self.next_position = self.next_position.index_select(0, rows)
