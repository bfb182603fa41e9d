"""Native generator checkpoints: the omnibind format (config.json, model.safetensors, tokenizer files) with a
"decoder" section beside "model" (the towers). `checkpoint.load` dispatches on that section; a training run's
checkpoint (towers, t' and b, projections, decoder) loads as a Generator, its embedding-only weights left out."""

from __future__ import annotations

from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import torch

from omnibind import checkpoint
from omnibind.config import ModelConfig
from omnibind.errors import CheckpointError
from omnibind.generation.config import DecoderConfig, GeneratorConfig
from omnibind.generation.model import TEXT, Generator
from omnibind.generation.text_ids import Prompts, SentencePiecePrompts
from omnibind.generation.tokenizer import PromptTokenizer
from omnibind.preprocess.text import Tokenizer

SECTION = checkpoint.GENERATOR_SECTION
TOKENIZER_JSON = "tokenizer.json"
EMBEDDING_ONLY = ("logit_scale", "logit_bias")
"""Weights of the embedding model that a generator reads nothing from (with any tower it has no use for)."""


def decoder_section(config: GeneratorConfig, tokenizer: Prompts | None) -> dict[str, Any]:
    """The "decoder" section of config.json: the decoder's shape, its special ids and how prompts are read."""
    return {"config": asdict(config.decoder), "bos_id": config.bos_id, "eos_id": config.eos_id,
            "pad_id": config.pad_id, "tokenizer": tokenizer_spec(tokenizer)}


def tokenizer_spec(tokenizer: Prompts | None) -> dict[str, Any]:
    """How a loaded checkpoint rebuilds the prompt tokenizer: PaliGemma's tokenizer.json, the text tower's
    SentencePiece model plus BOS, or none."""
    if isinstance(tokenizer, PromptTokenizer):
        eos = tokenizer.tokenizer.id_to_token(tokenizer.eos_id)
        return {"kind": "tokenizers", "file": TOKENIZER_JSON, "bos_token": tokenizer.bos_token, "eos_token": eos}
    if isinstance(tokenizer, SentencePiecePrompts):
        return {"kind": "sentencepiece", "text_vocab": tokenizer.text_vocab}
    if tokenizer is None:
        return {"kind": "none"}
    raise CheckpointError(f"cannot save a prompt tokenizer of type {type(tokenizer).__name__} "
                          "(expected PromptTokenizer or SentencePiecePrompts)")


def save_generator(model: Generator, folder: str | Path) -> Path:
    """Write a Generator as an omnibind checkpoint: towers' config, decoder section, weights, tokenizer files."""
    assets = dict(checkpoint.asset_files(model))  # type: ignore[arg-type]  # reads `processors` alone
    if isinstance(model.tokenizer, PromptTokenizer):
        assets[TOKENIZER_JSON] = model.tokenizer.path
    return checkpoint.save_state(folder, model.config.encoders, model.state_dict(), assets,
                                 {SECTION: decoder_section(model.config, model.tokenizer)})


def generator_config(meta: dict[str, Any], where: Path) -> GeneratorConfig:
    """The GeneratorConfig of a config.json with a "decoder" section, with errors naming the bad field."""
    section = meta.get(SECTION)
    if not isinstance(section, dict) or not isinstance(section.get("config"), dict):
        raise CheckpointError(f"{where}: '{SECTION}.config' missing (expected the decoder's shape as an object)")
    known = {f.name for f in fields(DecoderConfig)}
    unknown = sorted(set(section["config"]) - known)
    if unknown:
        raise CheckpointError(f"{where}: unknown '{SECTION}.config' field(s) {unknown} "
                              f"(expected among {sorted(known)})")
    ids = {}
    for key in ("bos_id", "eos_id", "pad_id"):
        if not isinstance(section.get(key), int):
            raise CheckpointError(f"{where}: '{SECTION}.{key}' is {section.get(key)!r} (expected an integer id)")
        ids[key] = section[key]
    return GeneratorConfig(ModelConfig.from_dict(meta["model"]), DecoderConfig(**section["config"]), **ids)


def build_tokenizer(spec: Any, folder: Path, processors: dict[str, Any]) -> Prompts | None:
    """The prompt tokenizer a checkpoint's "decoder.tokenizer" describes."""
    kind = spec.get("kind") if isinstance(spec, dict) else None
    if kind == "tokenizers":
        path = folder / str(spec.get("file", TOKENIZER_JSON))
        if not path.is_file():
            raise CheckpointError(f"{path}: missing (expected the generator's tokenizers-library file)")
        return PromptTokenizer(path, str(spec.get("bos_token", "<bos>")), str(spec.get("eos_token", "<eos>")))
    if kind == "sentencepiece":
        text = processors.get(TEXT)
        if text is not None and not isinstance(text, Tokenizer):
            raise CheckpointError(f"{folder}: the text tokenizer is a {type(text).__name__} "
                                  "(expected a SentencePiece model for 'decoder.tokenizer.kind' sentencepiece)")
        return SentencePiecePrompts(text, int(spec.get("text_vocab", 0)))
    if kind == "none":
        return None
    raise CheckpointError(f"{folder}: '{SECTION}.tokenizer.kind' is {kind!r} "
                          "(expected 'tokenizers', 'sentencepiece' or 'none')")


def load_generator(folder: Path, meta: dict[str, Any]) -> Generator:
    """A Generator from a native checkpoint folder (saved by `save_generator` or by a captioning run)."""
    from omnibind.processors import build_processors

    config = generator_config(meta, folder / checkpoint.CONFIG_FILE)
    processors = build_processors(config.encoders, assets=checkpoint.present_assets(folder))
    tokenizer = build_tokenizer(meta[SECTION].get("tokenizer"), folder, dict(processors))
    model = Generator(config, processors, tokenizer)
    state = checkpoint.read_weights(folder)
    drop_unprojected_media(model, state)
    checkpoint.load_state(model, generator_weights(state, model), folder)
    return model


def drop_unprojected_media(model: Generator, state: dict[str, torch.Tensor]) -> None:
    """A captioning run whose tasks read only some of its media towers saves projections for those alone: the
    others (e.g. the audio tower of an image-only captioner trained beside a three-tower contrastive loss) are
    left out of the generator. With no projection at all nothing is dropped, so strict loading names what is
    missing."""
    projected = [m for m in model.project if f"project.{m}.weight" in state]
    if not projected:
        return
    for m in [m for m in model.project if m not in projected]:
        del model.project[m]
        del model.towers[m]


def generator_weights(state: dict[str, torch.Tensor], model: Generator) -> dict[str, torch.Tensor]:
    """The weights a generator reads: a captioning run's checkpoint also holds t', b and towers the prefix never
    reads (the text tower); those are left out, everything else must match strictly."""
    unused = {f"towers.{m}." for m in model.config.encoders.towers if m not in model.towers}
    return {k: v for k, v in state.items() if k not in EMBEDDING_ONLY and not k.startswith(tuple(unused))}
