"""Import transformers CLAP checkpoints (ClapModel: config.json + safetensors + preprocessor_config.json +
tokenizer.json) into OmniBind with an "audio" tower of kind "htsat" and a "text" tower of kind "roberta".

The text tower is native (q/k/v fused into one matrix, otherwise one to one); the audio tower keeps
transformers' Swin stages (see omnibind.models.clap_audio). CLAP scores audio against text as
exp(logit_scale_a) · a·t; omnibind's logits are exp(t') · a·t + b, so t' = logit_scale_a and b = 0.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from omnibind.config import AudioConfig, ModelConfig, TextConfig
from omnibind.convert.registry import CheckpointKind
from omnibind.errors import CheckpointError
from omnibind.modalities.audio import AudioSettings
from omnibind.modalities.text import BPE_TOKENIZER_FILE

# transformers' defaults (ClapTextConfig, ClapAudioConfig, ClapFeatureExtractor), used where a file leaves a
# field out.
TEXT_DEFAULTS = dict(
    vocab_size=50265, hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
    hidden_act="gelu", max_position_embeddings=514, type_vocab_size=1, layer_norm_eps=1e-12, pad_token_id=1,
    eos_token_id=2,
)
AUDIO_DEFAULTS = dict(
    window_size=8, num_mel_bins=64, spec_size=256, hidden_act="gelu", patch_size=4, patch_stride=[4, 4],
    hidden_size=768, depths=[2, 2, 6, 2], num_attention_heads=[4, 8, 16, 32], enable_fusion=False,
    fusion_type=None, patch_embed_input_channels=1, flatten_patch_embeds=True, patch_embeds_hidden_size=96,
    enable_patch_layer_norm=True, qkv_bias=True, mlp_ratio=4.0, aff_block_r=4, layer_norm_eps=1e-5,
)
FRONT_END_DEFAULTS = dict(
    feature_size=64, sampling_rate=48000, hop_length=480, max_length_s=10, fft_window_size=1024,
    frequency_min=0.0, frequency_max=14000.0, padding="repeatpad",
)
TEXT_MAX_LEN = 77  # LAION-CLAP's training length (its tokenizer pads and truncates to 77)
HTSAT_KEYS = tuple(AUDIO_DEFAULTS)  # the audio_config fields the tower's Swin stages are built from


def is_clap_config(config: dict[str, Any]) -> bool:
    """True for a transformers CLAP model config."""
    return config.get("model_type") == "clap"


def config_from_hf(hf: dict[str, Any], feature_extractor: dict[str, Any] | None = None) -> ModelConfig:
    """Translate a transformers ClapConfig dict (and its feature extractor's config) into a ModelConfig."""
    t = {**TEXT_DEFAULTS, **(hf.get("text_config") or {})}
    a = {**AUDIO_DEFAULTS, **(hf.get("audio_config") or {})}
    embed_dim = int(hf.get("projection_dim", 512))
    for where, key, value, expected in (
        ("text_config", "hidden_act", t["hidden_act"], "gelu"),
        ("audio_config", "hidden_act", a["hidden_act"], "gelu"),
        ("", "projection_hidden_act", hf.get("projection_hidden_act", "relu"), "relu"),
    ):
        if value != expected:
            field = f"{where}.{key}" if where else key
            raise CheckpointError(f"config.json: {field} is {value!r} (expected {expected!r})")
    if a["enable_fusion"] and a["fusion_type"] not in (None, "aff_2d"):
        raise CheckpointError(f"config.json: audio_config.fusion_type is {a['fusion_type']!r} (expected 'aff_2d')")
    stages = len(a["depths"])
    if a["hidden_size"] != a["patch_embeds_hidden_size"] * 2 ** (stages - 1):
        raise CheckpointError(
            f"config.json: audio_config.hidden_size {a['hidden_size']} differs from the last Swin stage's width "
            f"{a['patch_embeds_hidden_size'] * 2 ** (stages - 1)} (patch_embeds_hidden_size × 2^(stages − 1))")
    f = {**FRONT_END_DEFAULTS, **(feature_extractor or {})}
    truncation = f.get("truncation") or ("fusion" if a["enable_fusion"] else "rand_trunc")
    if (truncation == "fusion") != bool(a["enable_fusion"]):
        raise CheckpointError(
            f"preprocessor_config.json: truncation {truncation!r} does not fit audio_config.enable_fusion "
            f"{a['enable_fusion']} (expected 'fusion' exactly when fusion is enabled)")
    if f["feature_size"] != a["num_mel_bins"]:
        raise CheckpointError(f"preprocessor_config.json: feature_size {f['feature_size']} differs from "
                              f"config.json audio_config.num_mel_bins {a['num_mel_bins']}")
    front_end = AudioSettings(sample_rate=int(f["sampling_rate"]), n_fft=int(f["fft_window_size"]),
                              hop_length=int(f["hop_length"]), n_mels=int(f["feature_size"]),
                              clip_seconds=float(f["max_length_s"]))
    audio = AudioConfig(
        width=a["hidden_size"], depth=sum(a["depths"]), heads=a["num_attention_heads"][-1],
        mlp_dim=int(a["hidden_size"] * a["mlp_ratio"]), projection=True, pool="gap", eps=a["layer_norm_eps"],
        front_end=front_end, kind="htsat",
        options={"truncation": truncation, "padding": f["padding"], "f_min": float(f["frequency_min"]),
                 "f_max": float(f["frequency_max"]), "htsat": {k: _plain(a[k]) for k in HTSAT_KEYS}},
    )
    max_len = min(TEXT_MAX_LEN, t["max_position_embeddings"] - t["pad_token_id"] - 1)
    text = TextConfig(
        width=t["hidden_size"], depth=t["num_hidden_layers"], heads=t["num_attention_heads"],
        mlp_dim=t["intermediate_size"], projection=True, pool="first", eps=t["layer_norm_eps"],
        vocab_size=t["vocab_size"], max_len=max_len, pad_id=t["pad_token_id"], eos_id=t["eos_token_id"],
        lower_case=False, kind="roberta",
        options={"max_positions": t["max_position_embeddings"], "type_vocab_size": t["type_vocab_size"]},
    )
    return ModelConfig(towers={"audio": audio, "text": text}, embed_dim=embed_dim, logit_bias_init=0.0,
                       logit_scale_init=math.log(float(hf.get("logit_scale_init_value", 1 / 0.07))))


def _plain(value: Any) -> Any:
    """Tuples as lists, so the options survive a JSON round trip unchanged."""
    return list(value) if isinstance(value, tuple) else value


# (pattern in transformers' names, replacement in ours); applied after q/k/v fusion.
_RENAMES = [
    (r"^text_model\.embeddings\.word_embeddings\.", "towers.text.embeddings.word."),
    (r"^text_model\.embeddings\.position_embeddings\.", "towers.text.embeddings.position."),
    (r"^text_model\.embeddings\.token_type_embeddings\.", "towers.text.embeddings.token_type."),
    (r"^text_model\.embeddings\.LayerNorm\.", "towers.text.embeddings.norm."),
    (r"^text_model\.encoder\.layer\.(\d+)\.attention\.self\.qkv\.", r"towers.text.encoder.blocks.\1.attn.qkv."),
    (r"^text_model\.encoder\.layer\.(\d+)\.attention\.output\.dense\.", r"towers.text.encoder.blocks.\1.attn.out."),
    (r"^text_model\.encoder\.layer\.(\d+)\.attention\.output\.LayerNorm\.", r"towers.text.encoder.blocks.\1.ln1."),
    (r"^text_model\.encoder\.layer\.(\d+)\.intermediate\.dense\.", r"towers.text.encoder.blocks.\1.fc1."),
    (r"^text_model\.encoder\.layer\.(\d+)\.output\.dense\.", r"towers.text.encoder.blocks.\1.fc2."),
    (r"^text_model\.encoder\.layer\.(\d+)\.output\.LayerNorm\.", r"towers.text.encoder.blocks.\1.ln2."),
    (r"^text_model\.pooler\.dense\.", "towers.text.pooler."),
    (r"^text_projection\.", "towers.text.proj."),
    (r"^audio_model\.audio_encoder\.layers\.", "towers.audio.encoder.blocks."),
    (r"^audio_model\.audio_encoder\.", "towers.audio.encoder."),
    (r"^audio_projection\.", "towers.audio.proj."),
]
_DROPPED = ("text_model.embeddings.position_ids", "text_model.embeddings.token_type_ids", "logit_scale_t")


def convert_state_dict(hf: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map a transformers ClapModel state dict onto OmniBind's parameter names and shapes."""
    hf = {k.removeprefix("clap."): v for k, v in hf.items() if k.removeprefix("clap.") not in _DROPPED}
    for name in [k for k in hf if k.startswith("text_model.") and ".attention.self.query." in k]:
        base, kind = name.split(".attention.self.query.")
        parts = [hf.pop(f"{base}.attention.self.{p}.{kind}") for p in ("query", "key", "value")]
        hf[f"{base}.attention.self.qkv.{kind}"] = torch.cat(parts, dim=0)
    out: dict[str, torch.Tensor] = {}
    for name, tensor in hf.items():
        if name == "logit_scale_a":
            out["logit_scale"] = tensor.reshape(1)
            out["logit_bias"] = torch.zeros(1, dtype=tensor.dtype)
            continue
        for pattern, repl in _RENAMES:
            name = re.sub(pattern, repl, name)
        out[name] = tensor
    return out


def load_clap(folder: Path, meta: dict[str, Any]) -> nn.Module:
    """A transformers CLAP folder as an OmniBind model with "audio" and "text" towers and their preprocessors."""
    from omnibind.checkpoint import load_state, present_assets, read_json, read_weights, require
    from omnibind.models.model import OmniBind
    from omnibind.processors import build_processors

    require(folder / BPE_TOKENIZER_FILE, "the byte-level BPE tokenizer of a CLAP checkpoint (RobertaTokenizerFast)")
    config = config_from_hf(meta, read_json(folder / "preprocessor_config.json", required=False))
    model = OmniBind(config, build_processors(config, assets=present_assets(folder)))
    load_state(model, convert_state_dict(read_weights(folder)), folder)
    return model


CHECKPOINT_KINDS = [CheckpointKind("transformers CLAP (model_type 'clap')", is_clap_config, load_clap)]
