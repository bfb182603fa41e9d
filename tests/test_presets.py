"""Named sizes decode as in big_vision's table; bad names fail with the list of known sizes."""

from __future__ import annotations

import pytest

from omnibind.errors import InputError
from omnibind.presets import decode_variant


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Ti/16", (192, 12, 768, 3, 16)),
        ("S/16", (384, 12, 1536, 6, 16)),
        ("B/16", (768, 12, 3072, 12, 16)),
        ("L/16", (1024, 24, 4096, 16, 16)),
        ("So400m/14", (1152, 27, 4304, 16, 14)),
        ("B", (768, 12, 3072, 12, None)),
    ],
)
def test_decode(name: str, expected: tuple) -> None:
    v = decode_variant(name)
    assert (v.width, v.depth, v.mlp_dim, v.heads, v.patch) == expected


@pytest.mark.parametrize("bad", ["X/16", "B/sixteen", ""])
def test_bad_names(bad: str) -> None:
    with pytest.raises(InputError, match="expected"):
        decode_variant(bad)
