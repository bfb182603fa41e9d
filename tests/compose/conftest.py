"""Two tiny checkpoints in unrelated spaces, made here: an image–text model (the base, 32-d) and an
audio–text model (24-d, 12-token texts)."""

from __future__ import annotations

from pathlib import Path

import pytest
from compose_fixtures import AUDIO, IMAGE, TEXT, tiny

import omnibind


@pytest.fixture
def sources(tmp_path: Path, spiece_model: Path) -> dict[str, Path]:
    """Saved checkpoints: "a" (image, text; 32-d) and "b" (audio, text; 24-d, 12-token texts)."""
    a = omnibind.save(tiny(spiece_model, (IMAGE, TEXT), 32, seed=1), tmp_path / "a")
    b = omnibind.save(tiny(spiece_model, (AUDIO, TEXT), 24, seed=2, max_len=12), tmp_path / "b")
    return {"a": a, "b": b}
