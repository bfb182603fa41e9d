"""Configs of the generator: the Gemma-style decoder's shape and the special token ids it writes with."""

from __future__ import annotations

from dataclasses import dataclass

from omnibind.config import ModelConfig
from omnibind.errors import InputError


@dataclass
class DecoderConfig:
    """A Gemma-architecture decoder: `heads` query heads share `kv_heads` key/value heads (1 = multi-query)."""

    vocab_size: int = 257_216
    width: int = 2048
    depth: int = 18
    heads: int = 8
    kv_heads: int = 1
    head_dim: int = 256
    mlp_dim: int = 16_384
    eps: float = 1e-6
    rope_theta: float = 10_000.0

    def __post_init__(self) -> None:
        if self.heads % self.kv_heads:
            raise InputError("decoder.heads", f"{self.heads} is not a multiple of kv_heads {self.kv_heads}")
        if self.head_dim % 2:
            raise InputError("decoder.head_dim", f"{self.head_dim} is odd", "an even size (rotary pairs)")


@dataclass
class GeneratorConfig:
    """Towers whose patch tokens form the prefix (in `encoders.towers` order), the decoder, and token ids."""

    encoders: ModelConfig
    decoder: DecoderConfig
    bos_id: int = 2
    eos_id: int = 1
    pad_id: int = 0

    def __post_init__(self) -> None:
        for name in ("bos_id", "eos_id", "pad_id"):
            value = getattr(self, name)
            if not 0 <= value < self.decoder.vocab_size:
                raise InputError(name, f"{value} is outside the vocabulary", f"0 ≤ id < {self.decoder.vocab_size}")
