"""Import transformers PaliGemma checkpoints (`PaliGemmaForConditionalGeneration`: config.json, safetensors,
tokenizer.json or only SentencePiece's tokenizer.model, preprocessor config) as a Generator.

The SigLIP vision tower maps through the SigLIP converter (its unused pooling head, when saved, is dropped);
the Gemma decoder's parameters map one to one by name; the output matrix is the tied embedding.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from omnibind.config import ImageConfig, ModelConfig
from omnibind.convert import siglip
from omnibind.convert.registry import CheckpointKind
from omnibind.errors import CheckpointError
from omnibind.generation.config import DecoderConfig, GeneratorConfig

TOKENIZER_JSON = "tokenizer.json"
TOKENIZER_MODEL = "tokenizer.model"  # read when tokenizer.json is absent, converted as transformers converts it

# transformers' class defaults (used for fields a config's sub-dict leaves out) ...
GEMMA_DEFAULTS: dict[str, Any] = dict(
    vocab_size=256_000, hidden_size=3072, intermediate_size=24_576, num_hidden_layers=28,
    num_attention_heads=16, num_key_value_heads=16, head_dim=256, rms_norm_eps=1e-6,
    pad_token_id=0, eos_token_id=1, bos_token_id=2, attention_bias=False,
)
# ... and PaliGemma's, used when a sub-config is absent altogether (as PaliGemmaConfig does).
PALIGEMMA_TEXT = {**GEMMA_DEFAULTS, "hidden_size": 2048, "num_hidden_layers": 18, "intermediate_size": 16_384,
                  "num_attention_heads": 8, "num_key_value_heads": 1, "vocab_size": 257_152}
PALIGEMMA_VISION = {**siglip.VISION_DEFAULTS, "intermediate_size": 4096, "hidden_size": 1152, "patch_size": 14,
                    "num_hidden_layers": 27, "num_attention_heads": 16, "vision_use_head": False}
TANH_GELU = (None, "gelu_pytorch_tanh", "gelu")  # transformers reads Gemma's legacy "gelu" as the tanh form


def is_paligemma_config(config: dict[str, Any]) -> bool:
    """True for a transformers PaliGemma model config."""
    return config.get("model_type") == "paligemma"


def text_settings(hf: dict[str, Any]) -> dict[str, Any]:
    """The Gemma text config with transformers' defaults filled in; Gemma 2 (PaliGemma 2) is refused."""
    given = hf.get("text_config")
    t = {**(GEMMA_DEFAULTS if given is not None else PALIGEMMA_TEXT), **(given or {})}
    if t.get("model_type", "gemma") != "gemma":
        raise CheckpointError(f"config.json: text_config.model_type is {t['model_type']!r} (expected 'gemma'; "
                              "PaliGemma 2's Gemma 2 decoder is not supported)")
    for key in ("hidden_act", "hidden_activation"):
        if t.get(key) not in TANH_GELU:
            raise CheckpointError(f"config.json: text_config.{key} is {t[key]!r} (expected 'gelu_pytorch_tanh')")
    if t["attention_bias"]:
        raise CheckpointError("config.json: text_config.attention_bias is true (expected false, as Gemma has)")
    rope = t.get("rope_parameters") or t.get("rope_scaling") or {}
    if rope.get("rope_type", rope.get("type", "default")) != "default":
        raise CheckpointError(f"config.json: text_config rope type {rope.get('rope_type')!r} (expected 'default')")
    t["rope_theta"] = rope.get("rope_theta", t.get("rope_theta", 10_000.0))
    return t


def config_from_hf(hf: dict[str, Any], image_processor: dict[str, Any] | None = None,
                   generation: dict[str, Any] | None = None) -> GeneratorConfig:
    """Translate a transformers PaliGemmaConfig dict (with its image processor and generation settings)."""
    t = text_settings(hf)
    given = hf.get("vision_config")
    v = {**(siglip.VISION_DEFAULTS if given is not None else PALIGEMMA_VISION), **(given or {})}
    if v.get("hidden_act") not in (None, "gelu_pytorch_tanh"):
        raise CheckpointError(f"config.json: vision_config.hidden_act is {v['hidden_act']!r} "
                              "(expected 'gelu_pytorch_tanh')")
    if hf.get("tie_word_embeddings", True) is False:
        raise CheckpointError("config.json: tie_word_embeddings is false (expected PaliGemma's tied embeddings)")
    proc = image_processor or {}
    if proc.get("resample", 3) != 3:
        raise CheckpointError(f"image processor: resample is {proc['resample']} (expected 3, bicubic)")
    side = siglip._side(v["image_size"])
    size = proc.get("size") or {}
    if size and {size.get("height"), size.get("width")} != {side}:
        raise CheckpointError(f"image processor: size {size} differs from vision_config.image_size {side}")
    image = ImageConfig(
        width=v["hidden_size"], depth=v["num_hidden_layers"], heads=v["num_attention_heads"],
        mlp_dim=v["intermediate_size"], projection=False, pool="gap", eps=v["layer_norm_eps"],
        image_size=side, patch_size=siglip._side(v["patch_size"]), channels=v["num_channels"],
        mean=tuple(proc.get("image_mean", (0.5, 0.5, 0.5))), std=tuple(proc.get("image_std", (0.5, 0.5, 0.5))),
    )
    decoder = DecoderConfig(
        vocab_size=t["vocab_size"], width=t["hidden_size"], depth=t["num_hidden_layers"],
        heads=t["num_attention_heads"], kv_heads=t["num_key_value_heads"],
        head_dim=t.get("head_dim") or t["hidden_size"] // t["num_attention_heads"],
        mlp_dim=t["intermediate_size"], eps=t["rms_norm_eps"], rope_theta=float(t["rope_theta"]),
    )
    ids = {k: t[k] for k in ("bos_token_id", "eos_token_id", "pad_token_id")}
    ids.update({k: value for k, value in (generation or {}).items() if k in ids and value is not None})
    eos = ids["eos_token_id"]
    if isinstance(eos, list):
        if len(eos) != 1:
            raise CheckpointError(f"eos_token_id is {eos} (expected one end-of-sequence id)")
        eos = eos[0]
    return GeneratorConfig(
        encoders=ModelConfig(towers={"image": image}, embed_dim=image.width), decoder=decoder,
        bos_id=ids["bos_token_id"], eos_id=eos,
        pad_id=ids["pad_token_id"] if ids["pad_token_id"] is not None else 0,
    )


_DECODER_RENAMES = [
    (r"^embed_tokens\.", "decoder.embed."),
    (r"^norm\.", "decoder.norm."),
    (r"^layers\.(\d+)\.self_attn\.([qkv])_proj\.", r"decoder.blocks.\1.attn.\2."),
    (r"^layers\.(\d+)\.self_attn\.o_proj\.", r"decoder.blocks.\1.attn.out."),
    (r"^layers\.(\d+)\.mlp\.(gate|up|down)_proj\.", r"decoder.blocks.\1.mlp.\2."),
    (r"^layers\.(\d+)\.input_layernorm\.", r"decoder.blocks.\1.attn_norm."),
    (r"^layers\.(\d+)\.post_attention_layernorm\.", r"decoder.blocks.\1.mlp_norm."),
]


def convert_state_dict(hf: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map a PaliGemma state dict (transformers 4 or 5 layout) onto the Generator's parameter names."""
    vision: dict[str, torch.Tensor] = {}
    out: dict[str, torch.Tensor] = {}
    for name, tensor in hf.items():
        key = name.removeprefix("model.")
        if key.startswith("vision_tower."):
            rest = key.removeprefix("vision_tower.").removeprefix("vision_model.")
            if not rest.startswith("head."):  # SigLIP's pooling head: PaliGemma reads the patch tokens
                vision["vision_model." + rest] = tensor
        elif key.startswith("multi_modal_projector.linear."):
            out["project.image." + key.removeprefix("multi_modal_projector.linear.")] = tensor
        elif key.startswith("language_model.") or key == "lm_head.weight":
            rest = key.removeprefix("language_model.").removeprefix("model.")
            if rest != "lm_head.weight":  # tied to the embeddings
                out[_rename(rest)] = tensor
        else:
            out[name] = tensor  # unexpected: the strict load names it
    out.update(siglip.convert_state_dict(vision))
    return out


def _rename(name: str) -> str:
    for pattern, repl in _DECODER_RENAMES:
        renamed = re.sub(pattern, repl, name)
        if renamed != name:
            return renamed
    return "language_model." + name


def image_processor_settings(folder: Path) -> dict[str, Any]:
    """The image processor's settings: preprocessor_config.json, or processor_config.json's image_processor."""
    from omnibind.checkpoint import read_json

    found = read_json(folder / "preprocessor_config.json", required=False)
    if found:
        return found
    nested = read_json(folder / "processor_config.json", required=False).get("image_processor")
    return nested if isinstance(nested, dict) else {}


def load_paligemma(folder: Path, meta: dict[str, Any]) -> nn.Module:
    """A transformers PaliGemma folder as a Generator with its image preprocessor and prompt tokenizer."""
    from omnibind.checkpoint import load_state, read_json, read_weights, require
    from omnibind.generation.model import Generator
    from omnibind.generation.tokenizer import PromptTokenizer
    from omnibind.processors import build_processors

    source = folder / TOKENIZER_JSON
    if not source.is_file() and (folder / TOKENIZER_MODEL).is_file():
        source = folder / TOKENIZER_MODEL
    require(source, f"the tokenizer of a PaliGemma checkpoint ({TOKENIZER_JSON} or {TOKENIZER_MODEL})")
    generation = read_json(folder / "generation_config.json", required=False)
    config = config_from_hf(meta, image_processor_settings(folder), generation)
    tokens = read_json(folder / "tokenizer_config.json", required=False)
    tokenizer = PromptTokenizer(source, _token(tokens, "bos_token", "<bos>"), _token(tokens, "eos_token", "<eos>"),
                                settings=tokens)
    if len(tokenizer) > config.decoder.vocab_size:
        raise CheckpointError(f"{source}: {len(tokenizer)} tokens exceed the decoder's "
                              f"vocab_size {config.decoder.vocab_size}")
    model = Generator(config, build_processors(config.encoders), tokenizer)
    load_state(model, convert_state_dict(read_weights(folder)), folder)
    return model


def _token(settings: dict[str, Any], key: str, default: str) -> str:
    """A special token's text from tokenizer_config.json (a string, or an AddedToken dict with "content")."""
    value = settings.get(key)
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else default


CHECKPOINT_KINDS = [CheckpointKind("transformers PaliGemma (model_type 'paligemma')", is_paligemma_config,
                                   load_paligemma)]
