"""Import the encoder of a transformers Whisper checkpoint (WhisperModel or WhisperForConditionalGeneration:
config.json + safetensors + preprocessor_config.json) as an omnibind audio tower of kind "whisper".

The encoder's weights map one to one onto omnibind's native copy (q/k/v fused into one matrix, with the zero
bias Whisper's key projection lacks); the pooling head and projection are new, to be trained, e.g. with
`init_from: <whisper folder>` in a training config, or `build(folder, embed_dim=...)` beside other towers.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from omnibind.config import AudioConfig, ModelConfig
from omnibind.convert.registry import CheckpointKind
from omnibind.errors import CheckpointError
from omnibind.modalities.audio import AudioSettings

# transformers' WhisperConfig defaults, used where a config.json leaves a field out.
DEFAULTS = dict(
    num_mel_bins=80, d_model=384, encoder_layers=4, encoder_attention_heads=6, encoder_ffn_dim=1536,
    max_source_positions=1500, activation_function="gelu",
)
# WhisperFeatureExtractor's defaults, used where preprocessor_config.json is absent or leaves a field out.
FRONT_END_DEFAULTS = dict(sampling_rate=16000, n_fft=400, hop_length=160, chunk_length=30)
LAYER_NORM_EPS = 1e-5  # transformers' Whisper layers use nn.LayerNorm's default


def is_whisper_config(config: dict[str, Any]) -> bool:
    """True for a transformers Whisper model config."""
    return config.get("model_type") == "whisper"


def tower_config(hf: dict[str, Any], preprocessor: dict[str, Any] | None = None, embed_dim: int | None = None,
                 pool: str = "map", clip_seconds: float | None = None) -> AudioConfig:
    """The audio tower config of a Whisper encoder (from config.json and preprocessor_config.json) with a
    `pool` head ("map" or "gap"), a projection when `embed_dim` differs from the encoder's width, and clips of
    `clip_seconds` (default Whisper's 30 s; shorter clips use the first positions)."""
    c = {**DEFAULTS, **hf}
    if c["activation_function"] != "gelu":
        raise CheckpointError(f"config.json: activation_function is {c['activation_function']!r} (expected 'gelu')")
    if pool not in ("map", "gap"):
        raise CheckpointError(f"pool: {pool!r} is not a Whisper head (expected 'map' or 'gap')")
    p = {**FRONT_END_DEFAULTS, **(preprocessor or {})}
    longest = 2 * int(c["max_source_positions"]) * int(p["hop_length"]) / int(p["sampling_rate"])
    if clip_seconds is not None and not 0 < clip_seconds <= longest:
        raise CheckpointError(f"clip_seconds: {clip_seconds} (expected more than 0 and at most {longest:g}, "
                              "Whisper's window)")
    if p.get("feature_size", c["num_mel_bins"]) != c["num_mel_bins"]:
        raise CheckpointError(f"preprocessor_config.json: feature_size {p['feature_size']} differs from "
                              f"config.json num_mel_bins {c['num_mel_bins']}")
    front_end = AudioSettings(sample_rate=int(p["sampling_rate"]), n_fft=int(p["n_fft"]),
                              hop_length=int(p["hop_length"]), n_mels=int(c["num_mel_bins"]),
                              clip_seconds=float(clip_seconds or p["chunk_length"]))
    width = int(c["d_model"])
    return AudioConfig(
        width=width, depth=int(c["encoder_layers"]), heads=int(c["encoder_attention_heads"]),
        mlp_dim=int(c["encoder_ffn_dim"]), projection=(embed_dim or width) != width, pool=pool,
        eps=LAYER_NORM_EPS, front_end=front_end, kind="whisper",
        options={"max_positions": int(c["max_source_positions"])},
    )


# (pattern in transformers' encoder names, replacement in ours); applied after q/k/v fusion.
_RENAMES = [
    (r"^layers\.", "blocks."),
    (r"^embed_positions\.weight$", "pos_embed"),
    (r"^layer_norm\.", "norm."),
    (r"\.self_attn_layer_norm\.", ".ln1."),
    (r"\.final_layer_norm\.", ".ln2."),
    (r"\.self_attn\.qkv\.", ".attn.qkv."),
    (r"\.self_attn\.out_proj\.", ".attn.out."),
    (r"\.fc([12])\.", r".mlp.fc\1."),
]


def encoder_state_dict(hf: dict[str, torch.Tensor], prefix: str = "towers.audio.encoder.") -> dict[str, torch.Tensor]:
    """The encoder's weights of a Whisper state dict (with or without the "model." prefix), renamed for
    omnibind's encoder under `prefix`; the decoder's weights are left out."""
    encoder = {k.split("encoder.", 1)[1]: v for k, v in hf.items()
               if k.removeprefix("model.").startswith("encoder.")}
    if not encoder:
        raise CheckpointError("weights: no 'encoder.*' tensors (expected a Whisper model's encoder)")
    for name in [k for k in encoder if ".self_attn.q_proj." in k]:
        base, kind = name.split(".self_attn.q_proj.")
        q, v = encoder.pop(name), encoder.pop(f"{base}.self_attn.v_proj.{kind}")
        k = encoder.pop(f"{base}.self_attn.k_proj.{kind}", None)
        if k is None:  # Whisper's key projection has no bias
            k = torch.zeros_like(q)
        encoder[f"{base}.self_attn.qkv.{kind}"] = torch.cat([q, k, v], dim=0)
    out = {}
    for name, tensor in encoder.items():
        for pattern, repl in _RENAMES:
            name = re.sub(pattern, repl, name)
        out[prefix + name] = tensor
    return out


def build(folder: str | Path, embed_dim: int | None = None, pool: str = "map", clip_seconds: float | None = None
          ) -> Any:
    """An OmniBind with one audio tower: the folder's Whisper encoder (weights loaded) and a fresh `pool` head
    and projection to `embed_dim` (default: the encoder's width, no projection), reading clips of
    `clip_seconds` (default 30), in eval mode."""
    from omnibind.checkpoint import CONFIG_FILE, read_json, read_weights
    from omnibind.models.model import OmniBind
    from omnibind.processors import build_processors

    folder = Path(folder)
    meta = read_json(folder / CONFIG_FILE, required=True)
    if not is_whisper_config(meta):
        raise CheckpointError(f"{folder / CONFIG_FILE}: model_type {meta.get('model_type')!r} (expected 'whisper')")
    preprocessor = read_json(folder / "preprocessor_config.json", required=False)
    audio = tower_config(meta, preprocessor, embed_dim, pool, clip_seconds)
    config = ModelConfig(towers={"audio": audio}, embed_dim=embed_dim or audio.width)
    model = OmniBind(config, build_processors(config))
    load_encoder(model.towers["audio"], encoder_state_dict(read_weights(folder), prefix="encoder."), folder)
    return model.eval()


def load_encoder(tower: nn.Module, state: dict[str, torch.Tensor], folder: Path) -> None:
    """Load the encoder's weights strictly (only the fresh head may be left without weights)."""
    expected = {k: v for k, v in tower.state_dict().items() if k.startswith("encoder.")}
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    wrong = [k for k in expected.keys() & state.keys() if expected[k].shape != state[k].shape]
    if missing or unexpected or wrong:
        details = {"missing": missing[:5], "unexpected": unexpected[:5], "wrong shape": wrong[:5]}
        raise CheckpointError(f"{folder}: Whisper encoder weights do not match its config.json ({details})")
    tower.load_state_dict(state, strict=False)


def _build(folder: Path, config: dict[str, Any]) -> nn.Module:
    model: nn.Module = build(folder)
    return model


CHECKPOINT_KINDS = [
    CheckpointKind("transformers Whisper encoder (model_type 'whisper'; fresh pooling head)", is_whisper_config, _build)
]
