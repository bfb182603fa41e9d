"""Import transformers SigLIP 2 checkpoints into OmniBind (native modules, exact numerics).

- Fixed resolution (google/siglip2-*-patch16-224 ...): config.json says model_type "siglip" with the 256k Gemma
  vocabulary; the towers are SigLIP's, the image processor resizes bilinearly (preprocessor_config.json
  `resample`), and the text goes through the Gemma tokenizer.json, lower-cased, as transformers' Siglip2Tokenizer.
- NaFlex (google/siglip2-*-naflex): model_type "siglip2", transformers' Siglip2Model; the image tower reads
  packed patches of any aspect ratio (models/naflex.py) prepared as Siglip2ImageProcessor does (max_num_patches,
  patch_size and resample from preprocessor_config.json).

Weights are named as SigLIP's (the NaFlex patch embedding is a linear layer instead of a convolution), so
convert.siglip's mapping applies to both.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from omnibind.config import ImageConfig, ModelConfig, TextConfig
from omnibind.convert import siglip
from omnibind.convert.registry import CheckpointKind
from omnibind.errors import CheckpointError

TOKENIZER_JSON = "tokenizer.json"
RESAMPLE = {0: "nearest", 1: "lanczos", 2: "bilinear", 3: "bicubic", 4: "box", 5: "hamming"}
"""transformers' `resample` values (Pillow's filter numbers) → ImageConfig.resample names."""
NAFLEX_MAX_PATCHES = 256  # Siglip2ImageProcessor's default max_num_patches
NAFLEX_PATCHES = 256  # Siglip2VisionConfig's default num_patches (a 16 × 16 position grid)


def is_siglip2_config(config: dict[str, Any]) -> bool:
    """True for a SigLIP 2 fixed-resolution config: model_type "siglip" with the Gemma vocabulary."""
    text = config.get("text_config") or {}
    return config.get("model_type") == "siglip" and text.get("vocab_size") == siglip.GEMMA_VOCAB


def is_naflex_config(config: dict[str, Any]) -> bool:
    """True for a transformers Siglip2Model (NaFlex) config."""
    return config.get("model_type") == "siglip2"


def resample_name(processor: dict[str, Any], default: int, where: str) -> str:
    """The ImageConfig.resample name of a preprocessor config's `resample` (Pillow's filter number)."""
    value = processor.get("resample", default)
    if value not in RESAMPLE:
        raise CheckpointError(f"{where}: resample is {value!r} (expected one of {sorted(RESAMPLE)}, Pillow's filters)")
    return RESAMPLE[value]


def config_from_hf(hf: dict[str, Any], processor: dict[str, Any], special: tuple[int, int]) -> ModelConfig:
    """A ModelConfig from a SigLIP 2 config.json, its preprocessor_config.json and the tokenizer's (eos, pad) ids."""
    naflex = is_naflex_config(hf)
    vision = dict(hf.get("vision_config") or {})
    if naflex:  # SigLIP's converter reads the position grid's side from image_size
        patch = vision.get("patch_size", siglip.VISION_DEFAULTS["patch_size"])
        if not isinstance(patch, int):
            raise CheckpointError(f"config.json: vision_config.patch_size is {patch!r} (expected one integer)")
        count = vision.get("num_patches", NAFLEX_PATCHES)
        side = math.isqrt(count)
        if side * side != count:
            raise CheckpointError(f"config.json: vision_config.num_patches is {count} (expected a square number)")
        vision["image_size"] = side * patch
    base = siglip.config_from_hf({**hf, "vision_config": vision}, processor)
    image, text = base.towers["image"], base.towers["text"]
    assert isinstance(image, ImageConfig) and isinstance(text, TextConfig)
    where = "preprocessor_config.json"
    image = dataclasses.replace(image, resample=resample_name(processor, 2, where))
    if naflex:
        limit = processor.get("max_num_patches", NAFLEX_MAX_PATCHES)
        if processor.get("patch_size", image.patch_size) != image.patch_size:
            raise CheckpointError(f"{where}: patch_size {processor['patch_size']} differs from config.json's "
                                  f"vision_config.patch_size {image.patch_size}")
        if not isinstance(limit, int) or limit < 1:
            raise CheckpointError(f"{where}: max_num_patches is {limit!r} (expected a positive integer)")
        image = dataclasses.replace(image, max_num_patches=limit)
    eos, pad = special
    for name, token in (("eos", eos), ("pad", pad)):
        if not 0 <= token < text.vocab_size:
            raise CheckpointError(f"{TOKENIZER_JSON}: <{name}> id {token} is outside the text vocabulary "
                                  f"({text.vocab_size} tokens in config.json)")
    text = dataclasses.replace(text, kind="siglip2", lower_case=True, eos_id=eos, pad_id=pad)
    return ModelConfig(towers={"image": image, "text": text}, embed_dim=base.embed_dim)


def convert_state_dict(hf: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map a transformers SiglipModel / Siglip2Model state dict onto OmniBind's names (SigLIP's mapping)."""
    return siglip.convert_state_dict({k.removeprefix("siglip2."): v for k, v in hf.items()})


def special_ids(folder: Path) -> tuple[int, int]:
    """The (eos, pad) ids of the folder's tokenizer.json, for the tokens tokenizer_config.json names."""
    from omnibind.checkpoint import read_json
    from omnibind.errors import InputError
    from omnibind.preprocess.text import GemmaTokenizer

    names = read_json(folder / "tokenizer_config.json", required=False)
    pieces = [_token(names.get(key), default) for key, default in (("eos_token", "<eos>"), ("pad_token", "<pad>"))]
    try:
        tokenizer = GemmaTokenizer(folder / TOKENIZER_JSON)
    except InputError as err:
        raise CheckpointError(str(err)) from err
    ids = []
    for piece in pieces:
        found = tokenizer.backend.token_to_id(piece)
        if found is None:
            raise CheckpointError(f"{folder / TOKENIZER_JSON}: no {piece!r} token (named by tokenizer_config.json)")
        ids.append(int(found))
    return ids[0], ids[1]


def _token(value: Any, default: str) -> str:
    """A special token's text from tokenizer_config.json (a string or an AddedToken dict)."""
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else default


def load(folder: Path, meta: dict[str, Any]) -> nn.Module:
    """A transformers SigLIP 2 folder (config.json, safetensors, tokenizer.json) as an OmniBind model."""
    from omnibind.checkpoint import load_state, present_assets, read_json, read_weights, require
    from omnibind.models.model import OmniBind
    from omnibind.processors import build_processors

    require(folder / TOKENIZER_JSON, "the Gemma tokenizer (tokenizer.json) of a SigLIP 2 checkpoint")
    processor = read_json(folder / "preprocessor_config.json", required=False)
    config = config_from_hf(meta, processor, special_ids(folder))
    model = OmniBind(config, build_processors(config, assets=present_assets(folder)))
    load_state(model, convert_state_dict(read_weights(folder)), folder)
    return model


CHECKPOINT_KINDS = [
    CheckpointKind("transformers SigLIP 2, fixed resolution (model_type 'siglip', Gemma vocabulary)",
                   is_siglip2_config, load),
    CheckpointKind("transformers SigLIP 2 NaFlex (model_type 'siglip2')", is_naflex_config, load),
]
