"""Seeds derived from one user seed and a purpose, so every random choice is reproducible on its own."""

from __future__ import annotations

import hashlib
import random


def derive_seed(*parts: object) -> int:
    """A 64-bit seed from the parts' text (stable across processes, machines and Python versions)."""
    text = ":".join(str(p) for p in parts)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


def rng_for(*parts: object) -> random.Random:
    """A random.Random seeded with derive_seed(*parts)."""
    return random.Random(derive_seed(*parts))


def unit_interval(*parts: object) -> float:
    """A number in [0, 1) fixed by the parts: used to assign items to splits."""
    return derive_seed(*parts) / 2**64
