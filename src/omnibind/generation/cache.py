"""A preallocated key/value cache: one (B, kv_heads, capacity, head_dim) buffer pair per decoder layer."""

from __future__ import annotations

import torch

from omnibind.generation.config import DecoderConfig


class KVCache:
    """Keys and values of every position seen so far; each layer writes at `length`, then `advance` moves it."""

    def __init__(self, config: DecoderConfig, batch: int, capacity: int, dtype: torch.dtype,
                 device: torch.device) -> None:
        shape = (batch, config.kv_heads, capacity, config.head_dim)
        self.keys = [torch.empty(shape, dtype=dtype, device=device) for _ in range(config.depth)]
        self.values = [torch.empty(shape, dtype=dtype, device=device) for _ in range(config.depth)]
        self.length = 0
        self.capacity = capacity

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store this step's (B, kv_heads, n, head_dim) keys/values; return every position's so far."""
        end = self.length + k.shape[2]
        if end > self.capacity:
            raise ValueError(f"KV cache: {end} positions exceed its capacity of {self.capacity}")
        self.keys[layer][:, :, self.length:end] = k
        self.values[layer][:, :, self.length:end] = v
        return self.keys[layer][:, :, :end], self.values[layer][:, :, :end]

    def advance(self, n: int) -> None:
        """Mark `n` more positions as filled (called once per forward pass, after every layer wrote)."""
        self.length += n

    def select(self, rows: torch.Tensor) -> None:
        """Keep (and reorder or repeat) batch rows, as beam search does when beams are re-ranked."""
        self.keys = [k.index_select(0, rows) for k in self.keys]
        self.values = [v.index_select(0, rows) for v in self.values]
