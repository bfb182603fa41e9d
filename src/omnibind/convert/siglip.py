"""Import transformers SigLIP checkpoints (config.json + safetensors + spiece.model) into OmniBind.

Parameter names map one to one except that q/k/v projections are fused into one QKV matrix and the
MAP head's packed in-projection is split into query and key/value parts; numerics are unchanged.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from omnibind.config import ImageConfig, ModelConfig, TextConfig
from omnibind.convert.registry import CheckpointKind
from omnibind.errors import CheckpointError

# transformers' defaults, used where a checkpoint's config.json leaves a field out.
TEXT_DEFAULTS = dict(
    vocab_size=32000, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
    num_attention_heads=12, max_position_embeddings=64, layer_norm_eps=1e-6, pad_token_id=1,
)
VISION_DEFAULTS = dict(
    hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
    image_size=224, patch_size=16, num_channels=3, layer_norm_eps=1e-6, vision_use_head=True,
)


GEMMA_VOCAB = 256_000
"""Text vocabulary of SigLIP 2's Gemma tokenizer; SigLIP (v1) checkpoints have 32,000 or 250,000 pieces. SigLIP 2's
fixed-resolution checkpoints are model_type "siglip" too, and this is what tells their config.json apart."""


def is_siglip_config(config: dict[str, Any]) -> bool:
    """True for a transformers SigLIP (v1) model config (SigLIP 2's fixed-resolution ones go to convert.siglip2)."""
    text = config.get("text_config") or {}
    return config.get("model_type") == "siglip" and text.get("vocab_size") != GEMMA_VOCAB


def config_from_hf(hf: dict[str, Any], image_processor: dict[str, Any] | None = None) -> ModelConfig:
    """Translate a transformers SiglipConfig dict (and its preprocessor config) into a ModelConfig."""
    t = {**TEXT_DEFAULTS, **(hf.get("text_config") or {})}
    v = {**VISION_DEFAULTS, **(hf.get("vision_config") or {})}
    for key, act in (("text_config", t.get("hidden_act")), ("vision_config", v.get("hidden_act"))):
        if act not in (None, "gelu_pytorch_tanh"):
            raise CheckpointError(f"config.json: {key}.hidden_act is {act!r} (expected 'gelu_pytorch_tanh')")
    if not v["vision_use_head"]:
        raise CheckpointError("config.json: vision_config.vision_use_head is false (expected a MAP head)")
    embed_dim = v["hidden_size"]
    proc = image_processor or {}
    image = ImageConfig(
        width=v["hidden_size"], depth=v["num_hidden_layers"], heads=v["num_attention_heads"],
        mlp_dim=v["intermediate_size"], projection=False, pool="map",
        eps=v["layer_norm_eps"], image_size=_side(v["image_size"]), patch_size=_side(v["patch_size"]),
        channels=v["num_channels"], mean=tuple(proc.get("image_mean", (0.5, 0.5, 0.5))),
        std=tuple(proc.get("image_std", (0.5, 0.5, 0.5))),
    )
    projection = t.get("projection_size") or t["hidden_size"]
    if projection != embed_dim:
        raise CheckpointError(
            f"config.json: text projection_size {projection} differs from vision hidden_size {embed_dim}"
        )
    text = TextConfig(
        width=t["hidden_size"], depth=t["num_hidden_layers"], heads=t["num_attention_heads"],
        mlp_dim=t["intermediate_size"], projection=True, pool="last",
        eps=t["layer_norm_eps"], vocab_size=t["vocab_size"], max_len=t["max_position_embeddings"],
        pad_id=t.get("pad_token_id", 1) if t.get("pad_token_id") is not None else 1,
    )
    return ModelConfig(towers={"image": image, "text": text}, embed_dim=embed_dim)


def _side(value: int | list[int]) -> int:
    if isinstance(value, int):
        return value
    if len(set(value)) != 1:
        raise CheckpointError(f"config.json: non-square size {value} is not supported (expected square)")
    return value[0]


# (pattern in transformers' names, replacement in ours); applied after q/k/v fusion.
_RENAMES = [
    (r"^vision_model\.embeddings\.patch_embedding\.", "towers.image.patch_embed.proj."),
    (r"^vision_model\.encoder\.layers\.", "towers.image.encoder.blocks."),
    (r"^vision_model\.post_layernorm\.", "towers.image.encoder.norm."),
    (r"^vision_model\.head\.attention\.out_proj\.", "towers.image.pool.out."),
    (r"^vision_model\.head\.layernorm\.", "towers.image.pool.norm."),
    (r"^vision_model\.head\.mlp\.", "towers.image.pool.mlp."),
    (r"^vision_model\.head\.probe$", "towers.image.pool.probe"),
    (r"^text_model\.embeddings\.token_embedding\.", "towers.text.token_embed."),
    (r"^text_model\.encoder\.layers\.", "towers.text.encoder.blocks."),
    (r"^text_model\.final_layer_norm\.", "towers.text.encoder.norm."),
    (r"^text_model\.head\.", "towers.text.proj."),
    (r"\.layer_norm1\.", ".ln1."),
    (r"\.layer_norm2\.", ".ln2."),
    (r"\.self_attn\.out_proj\.", ".attn.out."),
    (r"\.self_attn\.qkv\.", ".attn.qkv."),
]


def convert_state_dict(hf: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map a transformers SiglipModel state dict onto OmniBind's parameter names and shapes."""
    hf = {k.removeprefix("siglip."): v for k, v in hf.items() if not k.endswith("position_ids")}
    out: dict[str, torch.Tensor] = {}
    for name in list(hf):
        if ".self_attn.q_proj." in name:
            kind = name.rsplit(".", 1)[1]
            base = name.split(".self_attn.q_proj.")[0]
            parts = [hf.pop(f"{base}.self_attn.{p}_proj.{kind}") for p in "qkv"]
            hf[f"{base}.self_attn.qkv.{kind}"] = torch.cat(parts, dim=0)
    for kind in ("weight", "bias"):
        packed = hf.pop(f"vision_model.head.attention.in_proj_{kind}", None)
        if packed is not None:
            q, kv = packed.split([packed.shape[0] // 3, 2 * packed.shape[0] // 3])
            out[f"towers.image.pool.q.{kind}"], out[f"towers.image.pool.kv.{kind}"] = q, kv
    for name, tensor in hf.items():
        out[_rename(name)] = tensor
    _move_positions(out, hf)
    return out


def _rename(name: str) -> str:
    if name in ("logit_scale", "logit_bias"):
        return name
    for pattern, repl in _RENAMES:
        name = re.sub(pattern, repl, name)
    return name


def _move_positions(out: dict[str, torch.Tensor], hf: dict[str, torch.Tensor]) -> None:
    """Position tables are (N, D) embeddings in transformers and (1, N, D) parameters here."""
    for src, dst in (
        ("vision_model.embeddings.position_embedding.weight", "towers.image.patch_embed.pos_embed"),
        ("text_model.embeddings.position_embedding.weight", "towers.text.pos_embed"),
    ):
        renamed = _rename(src)
        if renamed in out:
            del out[renamed]
            out[dst] = hf[src].unsqueeze(0)


def _build(folder: Path, config: dict[str, Any]) -> nn.Module:
    from omnibind.checkpoint import load_siglip

    return load_siglip(folder, config)


CHECKPOINT_KINDS = [CheckpointKind("transformers SigLIP (model_type 'siglip')", is_siglip_config, _build)]
