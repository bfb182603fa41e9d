"""omnibind: images, text and audio in one embedding space, trained with the sigmoid (SigLIP) loss."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omnibind import modalities
from omnibind.checkpoint import load, save
from omnibind.config import MODALITIES, ModelConfig, model_config
from omnibind.inference import ZeroShotResult, zero_shot
from omnibind.modalities import Modality, register
from omnibind.models.model import OmniBind
from omnibind.processors import build_processors

__version__ = "0.1.0"

__all__ = [
    "MODALITIES",
    "Modality",
    "ModelConfig",
    "OmniBind",
    "ZeroShotResult",
    "create",
    "load",
    "modalities",
    "register",
    "save",
    "zero_shot",
]


def create(
    variant: str = "B/16",
    modalities: tuple[str, ...] = MODALITIES,
    tokenizer: str | Path | None = None,
    embed_dim: int | None = None,
    **tower_overrides: dict[str, Any],
) -> OmniBind:
    """A freshly initialised model with every tower of the named size ("Ti/16", "B/16", "So400m/14").

    `modalities` names registered modalities (the built-ins by default); `tokenizer` is a SentencePiece
    .model for the text tower; `image={"image_size": 384}` and the like override single towers.
    """
    config = model_config(variant, modalities, embed_dim, **tower_overrides)
    return OmniBind(config, build_processors(config, tokenizer))
