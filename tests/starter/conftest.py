"""Fixtures for the starter-dataset tests: small processors to decode a built split with."""

from __future__ import annotations

from pathlib import Path

import pytest

from omnibind.preprocess.audio import AudioPreprocessor, AudioSettings
from omnibind.preprocess.image import ImagePreprocessor
from omnibind.preprocess.text import Tokenizer


@pytest.fixture(scope="session")
def processors(spiece_model: Path) -> dict:
    """Small processors: 16 px images, 8-token texts, 8-mel 0.1 s audio."""
    return {"image": ImagePreprocessor(16), "text": Tokenizer(spiece_model, max_len=8),
            "audio": AudioPreprocessor(AudioSettings(n_mels=8, clip_seconds=0.1))}
