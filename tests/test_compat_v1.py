"""A checkpoint written before the modality registry (format 1: embed_dim in every tower, flat audio
front-end fields) still loads, embeds identically, and saves in today's layout."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

import omnibind

FIXTURE = Path(__file__).parent / "fixtures" / "compat_v1"
TEXTS = ["a photo of the cat", "the sound of piano"]  # as in fixtures/compat_v1/make.py


def test_format_1_checkpoint_embeds_as_when_it_was_written() -> None:
    model = omnibind.load(FIXTURE / "checkpoint")
    expected = np.load(FIXTURE / "embeddings.npz")
    with torch.no_grad():
        got = {
            "image": model.encode("image", [str(FIXTURE / "media" / "circle.png")]).numpy(),
            "audio": model.encode("audio", [str(FIXTURE / "media" / "tone.wav")]).numpy(),
            "text": model.encode("text", TEXTS).numpy(),
        }
    for modality, vectors in got.items():
        np.testing.assert_allclose(vectors, expected[modality], atol=1e-6, rtol=0, err_msg=modality)
    front_end = model.config.towers["audio"].front_end
    assert (front_end.n_mels, front_end.clip_seconds) == (32, 1.28)  # the flat v1 fields, moved


def test_format_1_checkpoint_saves_in_todays_layout(tmp_path: Path) -> None:
    model = omnibind.load(FIXTURE / "checkpoint")
    omnibind.save(model, tmp_path / "again")
    meta = json.loads((tmp_path / "again" / "config.json").read_text())
    assert meta["format_version"] == 2
    assert all("embed_dim" not in tower for tower in meta["model"]["towers"].values())
    assert meta["model"]["towers"]["audio"]["front_end"]["n_mels"] == 32
    again = omnibind.load(tmp_path / "again")
    with torch.no_grad():
        assert torch.equal(again.encode("text", TEXTS), model.encode("text", TEXTS))
