"""Model configuration dataclasses; they round-trip through JSON so checkpoints are self-describing."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from omnibind.errors import InputError
from omnibind.presets import decode_variant

MODALITIES = ("image", "text", "audio")


@dataclass
class TowerConfig:
    """Encoder shape shared by every tower; `projection` adds a linear map to the shared embedding."""

    width: int = 768
    depth: int = 12
    heads: int = 12
    mlp_dim: int = 3072
    embed_dim: int = 768
    projection: bool = False
    pool: str = "map"
    eps: float = 1e-6


@dataclass
class ImageConfig(TowerConfig):
    """ViT image tower: square images of `image_size` cut into `patch_size` patches."""

    image_size: int = 224
    patch_size: int = 16
    channels: int = 3
    mean: tuple[float, ...] = (0.5, 0.5, 0.5)
    std: tuple[float, ...] = (0.5, 0.5, 0.5)


@dataclass
class TextConfig(TowerConfig):
    """Text transformer: token ids padded to `max_len`, pooled at the last position as in SigLIP."""

    vocab_size: int = 32000
    max_len: int = 64
    pad_id: int = 1
    eos_id: int = 1
    lower_case: bool = True
    projection: bool = True
    pool: str = "last"


@dataclass
class AudioConfig(TowerConfig):
    """Audio tower: log-mel spectrograms (n_mels × frames) cut into square patches like an image."""

    sample_rate: int = 16000
    n_fft: int = 400
    hop_length: int = 160
    n_mels: int = 128
    clip_seconds: float = 10.0
    patch_size: int = 16

    @property
    def num_frames(self) -> int:
        """Spectrogram frames of one clip: one per hop, as the audio preprocessor emits."""
        return round(self.clip_seconds * self.sample_rate) // self.hop_length


TOWER_CONFIGS: dict[str, type[TowerConfig]] = {"image": ImageConfig, "text": TextConfig, "audio": AudioConfig}


@dataclass
class ModelConfig:
    """A whole model: one config per modality present, the embedding size and the loss scalars' init."""

    towers: dict[str, TowerConfig] = field(default_factory=dict)
    embed_dim: int = 768
    logit_scale_init: float = math.log(10.0)
    logit_bias_init: float = -10.0

    def __post_init__(self) -> None:
        for name, tower in self.towers.items():
            if name not in TOWER_CONFIGS:
                raise InputError(f"towers.{name}", "unknown modality", f"one of {', '.join(MODALITIES)}")
            if tower.embed_dim != self.embed_dim:
                raise InputError(
                    f"towers.{name}.embed_dim", f"is {tower.embed_dim}", f"the model's embed_dim {self.embed_dim}"
                )
            if tower.width % tower.heads:
                raise InputError(f"towers.{name}", f"width {tower.width} not divisible by heads {tower.heads}")

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form of the config (tuples become lists)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Rebuild a config from `to_dict()` output, rejecting unknown fields by name."""
        towers = {name: _tower_from_dict(name, value) for name, value in data.get("towers", {}).items()}
        rest = {k: v for k, v in data.items() if k != "towers"}
        _check_fields(cls, rest, "model")
        return cls(towers=towers, **rest)


def _check_fields(cls: type, data: dict[str, Any], where: str) -> None:
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise InputError(where, f"unknown config field(s) {unknown}", f"fields among {sorted(known)}")


def _tower_from_dict(name: str, data: dict[str, Any]) -> TowerConfig:
    if name not in TOWER_CONFIGS:
        raise InputError(f"towers.{name}", "unknown modality", f"one of {', '.join(MODALITIES)}")
    cls = TOWER_CONFIGS[name]
    _check_fields(cls, data, f"towers.{name}")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    return cls(**values)


def tower_config(modality: str, variant: str, embed_dim: int | None = None, **overrides: Any) -> TowerConfig:
    """Config of one tower from a named size ("B/16"); the patch size applies to image and audio."""
    if modality not in TOWER_CONFIGS:
        raise InputError(modality, "unknown modality", f"one of {', '.join(MODALITIES)}")
    v = decode_variant(variant)
    shape: dict[str, Any] = dict(width=v.width, depth=v.depth, heads=v.heads, mlp_dim=v.mlp_dim)
    if v.patch is not None and modality != "text":
        shape["patch_size"] = v.patch
    shape["embed_dim"] = embed_dim or v.width
    shape.update(overrides)
    if modality != "text":
        shape.setdefault("projection", shape["embed_dim"] != shape["width"])
    return TOWER_CONFIGS[modality](**shape)


def model_config(
    variant: str = "B/16",
    modalities: tuple[str, ...] = MODALITIES,
    embed_dim: int | None = None,
    **tower_overrides: dict[str, Any],
) -> ModelConfig:
    """A model with every tower of the same named size; `image={...}` etc. override single towers."""
    dim = embed_dim or decode_variant(variant).width
    towers = {
        m: tower_config(m, variant, embed_dim=dim, **tower_overrides.get(m, {})) for m in modalities
    }
    return ModelConfig(towers=towers, embed_dim=dim)
