"""Shared fixtures: a small SigLIP-style SentencePiece model trained on the fly."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import tiny_corpus, tiny_model
from omnibind.preprocess.text import train_tokenizer


@pytest.fixture(scope="session")
def spiece_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A unigram SentencePiece model with SigLIP's id layout (pad 0, eos 1, unk 2)."""
    return train_tokenizer(tiny_corpus(), tmp_path_factory.mktemp("tok") / "spiece", vocab_size=64)


@pytest.fixture
def tiny_checkpoint(tmp_path: Path, spiece_model: Path) -> Path:
    """A saved tiny omnibind checkpoint folder with its tokenizer."""
    import omnibind

    return omnibind.save(tiny_model(spiece_model), tmp_path / "tiny")


@pytest.fixture(scope="session")
def media_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A real photo (scikit-image's astronaut), a drawn PNG and two synthetic sounds."""
    import numpy as np
    import soundfile
    from PIL import Image, ImageDraw

    folder = tmp_path_factory.mktemp("media")
    skimage = pytest.importorskip("skimage")
    photo = Path(skimage.__file__).parent / "data" / "astronaut.png"
    drawing = folder / "circle.png"
    image = Image.new("RGB", (64, 48), "white")
    ImageDraw.Draw(image).ellipse((8, 8, 40, 40), fill="red")
    image.save(drawing)
    t = np.arange(16000) / 16000
    tone, chirp = folder / "tone.wav", folder / "chirp.flac"
    soundfile.write(tone, (0.5 * np.sin(2 * np.pi * 440 * t)).astype("float32"), 16000)
    soundfile.write(chirp, (0.5 * np.sin(2 * np.pi * (200 + 2000 * t) * t)).astype("float32"), 22050)
    return {"photo": photo, "drawing": drawing, "tone": tone, "chirp": chirp}
