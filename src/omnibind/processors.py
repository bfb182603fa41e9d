"""Build the per-modality preprocessors that match a model config (one factory, as open_clip has)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omnibind.config import AudioConfig, ImageConfig, ModelConfig, TextConfig


def build_processors(config: ModelConfig, tokenizer_file: str | Path | None = None) -> dict[str, Any]:
    """Preprocessors for every tower; text gets one only when a SentencePiece model is given."""
    processors: dict[str, Any] = {}
    for name, tower in config.towers.items():
        if isinstance(tower, ImageConfig):
            from omnibind.preprocess.image import ImagePreprocessor

            processors[name] = ImagePreprocessor(tower.image_size, tower.mean, tower.std)
        elif isinstance(tower, AudioConfig):
            from omnibind.preprocess.audio import AudioPreprocessor, AudioSettings

            settings = AudioSettings(
                sample_rate=tower.sample_rate, n_fft=tower.n_fft, hop_length=tower.hop_length,
                n_mels=tower.n_mels, clip_seconds=tower.clip_seconds,
            )
            processors[name] = AudioPreprocessor(settings)
        elif isinstance(tower, TextConfig) and tokenizer_file is not None:
            from omnibind.preprocess.text import Tokenizer

            processors[name] = Tokenizer(tokenizer_file, tower.max_len, tower.lower_case)
    return processors
