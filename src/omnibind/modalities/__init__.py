"""One module per modality and the registry every layer reads. Importing this package registers the
built-in modalities (image, text, audio), in that order."""

from __future__ import annotations

from omnibind.modalities.audio import AUDIO, AudioConfig, AudioSettings
from omnibind.modalities.base import InputSpec, Modality, Preprocessor, Tower, TowerConfig
from omnibind.modalities.image import IMAGE, ImageConfig
from omnibind.modalities.registry import (
    all_modalities,
    for_config,
    for_extension,
    for_field,
    get,
    media,
    media_names,
    modality_of,
    names,
    register,
    sniff,
    unregister,
)
from omnibind.modalities.text import TEXT, TextConfig

for _builtin in (IMAGE, TEXT, AUDIO):  # in this order: lists of modalities read image, text, audio
    register(_builtin)

__all__ = [
    "AUDIO",
    "IMAGE",
    "TEXT",
    "AudioConfig",
    "AudioSettings",
    "ImageConfig",
    "InputSpec",
    "Modality",
    "Preprocessor",
    "TextConfig",
    "Tower",
    "TowerConfig",
    "all_modalities",
    "for_config",
    "for_extension",
    "for_field",
    "get",
    "media",
    "media_names",
    "modality_of",
    "names",
    "register",
    "sniff",
    "unregister",
]
