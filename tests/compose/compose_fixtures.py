"""Tiny models in unrelated spaces for the composition tests (a module name of its own: pytest imports
every conftest.py under the same name)."""

from __future__ import annotations

from pathlib import Path

import torch

import omnibind
from helpers import TINY_TOWER
from omnibind.preprocess.text import Tokenizer

IMAGE, TEXT, AUDIO = (m.name for m in (omnibind.modalities.IMAGE, omnibind.modalities.TEXT, omnibind.modalities.AUDIO))


def tiny(spiece: Path, modalities: tuple[str, ...], embed_dim: int, seed: int, max_len: int = 16,
         projection: bool = False, text_width: int = 32) -> omnibind.OmniBind:
    """A tiny model of some modalities, in a space of its own (its seed and size); `projection` gives the
    media towers a projection even where their width is the embedding size."""
    torch.manual_seed(seed)
    media = dict(TINY_TOWER, projection=True) if projection else TINY_TOWER
    towers = {IMAGE: dict(media, image_size=32, patch_size=8),
              TEXT: dict(TINY_TOWER, width=text_width, vocab_size=Tokenizer(spiece).vocab_size, max_len=max_len),
              AUDIO: dict(media, n_mels=32, clip_seconds=1.28, patch_size=8)}
    return omnibind.create("Ti/16", modalities=modalities, tokenizer=spiece, embed_dim=embed_dim,
                           **{m: towers[m] for m in modalities}).eval()


def specs(sources: dict[str, Path]) -> list[str]:
    """The --from specs composing b's audio into a's space through text."""
    return [f"{IMAGE},{TEXT}={sources['a']}", f"{AUDIO},{TEXT}={sources['b']}"]
