"""Build the per-modality preprocessors that match a model config (one factory, as open_clip has)."""

from __future__ import annotations

from pathlib import Path

import omnibind.modalities as registry
from omnibind.config import ModelConfig
from omnibind.modalities import Preprocessor


def build_processors(config: ModelConfig, tokenizer_file: str | Path | None = None,
                     assets: dict[str, Path] | None = None) -> dict[str, Preprocessor]:
    """Preprocessors for every tower, each built by its modality from the tower config and the checkpoint's
    asset files (`tokenizer_file` is the text tower's SentencePiece model); a modality whose asset is
    missing (text without a tokenizer) gets none."""
    files = dict(assets or {})
    if tokenizer_file is not None:
        files[registry.text.TOKENIZER_FILE] = Path(tokenizer_file)
    processors: dict[str, Preprocessor] = {}
    for name, tower in config.towers.items():
        processor = registry.get(name).build_preprocessor(tower, files)
        if processor is not None:
            processors[name] = processor
    return processors
