"""SigLIP 2's text tower kind: SigLIP's tower (token + position embeddings, pre-LN encoder, last-token pooling,
linear head) read through the Gemma tokenizer that SigLIP 2 checkpoints carry as tokenizer.json."""

from __future__ import annotations

from pathlib import Path

from omnibind.modalities.text import BPE_TOKENIZER_FILE, TextConfig
from omnibind.models.text import Model
from omnibind.preprocess.text import GemmaTokenizer

__all__ = ["Model", "build_preprocessor"]


def build_preprocessor(config: TextConfig, assets: dict[str, Path]) -> GemmaTokenizer | None:
    """The lower-casing Gemma tokenizer of `assets["tokenizer.json"]`; None when the checkpoint has none."""
    path = assets.get(BPE_TOKENIZER_FILE)
    if path is None:
        return None
    return GemmaTokenizer(path, config.max_len, config.lower_case, config.eos_id, config.pad_id)
