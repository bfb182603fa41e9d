"""The model configuration: one tower config per modality (each defined by its modality module) and the
shared embedding size; it round-trips through JSON so checkpoints are self-describing."""

from __future__ import annotations

import math
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any

import omnibind.modalities as registry
from omnibind.errors import InputError
from omnibind.modalities import AudioConfig, ImageConfig, TextConfig, TowerConfig
from omnibind.presets import decode_variant

__all__ = ["MODALITIES", "AudioConfig", "ImageConfig", "ModelConfig", "TextConfig", "TowerConfig",
           "model_config", "tower_config"]

MODALITIES = tuple(m.name for m in (registry.IMAGE, registry.TEXT, registry.AUDIO))
"""The towers a new model has unless told otherwise: the built-in modalities."""


@dataclass
class ModelConfig:
    """A whole model: one config per modality present, the embedding size and the loss scalars' init."""

    towers: dict[str, TowerConfig] = field(default_factory=dict)
    embed_dim: int = 768
    logit_scale_init: float = math.log(10.0)
    logit_bias_init: float = -10.0

    def __post_init__(self) -> None:
        for name, tower in self.towers.items():
            expected = registry.get(name).config_class
            if type(tower) is not expected:
                raise InputError(f"towers.{name}", f"is a {type(tower).__name__}", f"a {expected.__name__}")
            if tower.width % tower.heads:
                raise InputError(f"towers.{name}", f"width {tower.width} not divisible by heads {tower.heads}")
            if not tower.projection and tower.width != self.embed_dim:
                raise InputError(f"towers.{name}.projection", f"off, but width {tower.width} differs from "
                                 f"embed_dim {self.embed_dim}", "projection: true")

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form of the config (tuples become lists, nested settings dicts); a tower's fields named
        in its class's LAYOUT_OPTIONAL are left out while at their defaults (older layouts stay unchanged)."""
        data = asdict(self)
        for name, tower in self.towers.items():
            for key in getattr(type(tower), "LAYOUT_OPTIONAL", ()):
                if getattr(tower, key) == _default(type(tower), key):
                    del data["towers"][name][key]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Rebuild a config from `to_dict()` output (or an older layout), rejecting unknown fields by name."""
        rest = {k: v for k, v in data.items() if k != "towers"}
        _check_fields(cls, rest, "model")
        embed_dim = rest.get("embed_dim", cls.embed_dim)
        towers = {name: tower_from_dict(name, value, embed_dim) for name, value in data.get("towers", {}).items()}
        return cls(towers=towers, **rest)


def _default(cls: type, name: str) -> Any:
    """The default value of dataclass field `name` of `cls` (calling its default_factory)."""
    spec = next(f for f in fields(cls) if f.name == name)
    return spec.default_factory() if spec.default is MISSING and spec.default_factory is not MISSING else spec.default


def _check_fields(cls: type, data: dict[str, Any], where: str) -> None:
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise InputError(where, f"unknown config field(s) {unknown}", f"fields among {sorted(known)}")


def tower_from_dict(name: str, data: dict[str, Any], embed_dim: int | None = None) -> TowerConfig:
    """One tower's config from plain values. Checkpoints written before the registry also record the
    model's embed_dim in every tower: it must agree with the model's, and is dropped."""
    modality = registry.get(name)
    values = dict(data)
    legacy_dim = values.pop("embed_dim", None)
    if legacy_dim is not None and embed_dim is not None and legacy_dim != embed_dim:
        raise InputError(f"towers.{name}.embed_dim", f"is {legacy_dim}", f"the model's embed_dim {embed_dim}")
    values = modality.resolve_config(values)
    _check_fields(modality.config_class, values, f"towers.{name}")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    return modality.config_class(**values)


def tower_config(modality: str, variant: str, embed_dim: int | None = None, **overrides: Any) -> TowerConfig:
    """Config of one tower from a named size ("B/16"); the modality adds what the size implies (patch size,
    whether a projection to `embed_dim` is needed)."""
    v = decode_variant(variant)
    dim = embed_dim or v.width
    width = overrides.get("width", v.width)
    shape: dict[str, Any] = dict(width=v.width, depth=v.depth, heads=v.heads, mlp_dim=v.mlp_dim)
    shape.update(registry.get(modality).config_overrides(v.patch, dim, width))
    shape.update(overrides)
    return tower_from_dict(modality, shape, dim)


def model_config(
    variant: str = "B/16",
    modalities: tuple[str, ...] = MODALITIES,
    embed_dim: int | None = None,
    **tower_overrides: dict[str, Any],
) -> ModelConfig:
    """A model with every tower of the same named size; `image={...}` etc. override single towers."""
    dim = embed_dim or decode_variant(variant).width
    towers = {m: tower_config(m, variant, embed_dim=dim, **tower_overrides.get(m, {})) for m in modalities}
    return ModelConfig(towers=towers, embed_dim=dim)
