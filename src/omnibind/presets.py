"""Named model sizes in big_vision's style ("B/16", "So400m/14"), decoded in one table for every tower."""

from __future__ import annotations

from dataclasses import dataclass

from omnibind.errors import InputError

# Width, depth, MLP size and heads per variant, as in big_vision's vit.py (decode_variant).
WIDTH = {"Ti": 192, "S": 384, "M": 512, "B": 768, "L": 1024, "So400m": 1152, "H": 1280, "g": 1408, "G": 1664}
DEPTH = {"Ti": 12, "S": 12, "M": 12, "B": 12, "L": 24, "So400m": 27, "H": 32, "g": 40, "G": 48}
MLP_DIM = {"Ti": 768, "S": 1536, "M": 2048, "B": 3072, "L": 4096, "So400m": 4304, "H": 5120, "g": 6144, "G": 8192}
HEADS = {"Ti": 3, "S": 6, "M": 8, "B": 12, "L": 16, "So400m": 16, "H": 16, "g": 16, "G": 16}


@dataclass(frozen=True)
class Variant:
    """Encoder shape decoded from a name such as "B/16"; patch is None for names without one ("B")."""

    width: int
    depth: int
    mlp_dim: int
    heads: int
    patch: int | None


def decode_variant(name: str) -> Variant:
    """Decode "B/16" (or "B") into encoder sizes; the same table serves image, text and audio towers."""
    size, _, patch = name.partition("/")
    if size not in WIDTH:
        raise InputError(name, f"unknown model size {size!r}", f"one of {', '.join(WIDTH)} (e.g. 'B/16')")
    if patch and not patch.isdigit():
        raise InputError(name, f"patch size {patch!r} is not an integer", "a name such as 'B/16'")
    return Variant(WIDTH[size], DEPTH[size], MLP_DIM[size], HEADS[size], int(patch) if patch else None)
