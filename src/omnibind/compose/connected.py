"""The "connected" tower kind: a foreign tower (from another model's space) followed by a small connector
into this model's space. Its config is the foreign tower's, with `kind: connected` and the foreign config
nested in `options` (so the front end, input spec and preprocessor stay the foreign tower's own)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

import omnibind.modalities as registry
from omnibind.errors import InputError
from omnibind.modalities import InputSpec, Preprocessor, TowerConfig

KIND = "connected"
CONNECTORS = ("linear", "mlp")
"""linear: one matrix (C-MCR's simplest map); mlp: Linear → GELU → Linear with `hidden` units."""


@dataclass(frozen=True)
class Connection:
    """What a connected tower's options hold: the foreign tower's config as plain values, the embedding
    size of its own space, and the connector's kind and hidden width (mlp only)."""

    tower: dict[str, Any]
    embed_dim: int
    connector: str = "linear"
    hidden: int = 0


def connection(config: TowerConfig, where: str = "") -> Connection:
    """The Connection a connected tower config's `options` describe, with errors naming the field."""
    modality = registry.for_config(config).name
    where = where or f"towers.{modality}.options"
    options = dict(getattr(config, "options", {}) or {})
    unknown = sorted(set(options) - {f.name for f in dataclasses.fields(Connection)})
    if unknown or not isinstance(options.get("tower"), dict) or not isinstance(options.get("embed_dim"), int):
        raise InputError(where, f"has keys {sorted(options)}",
                         "tower (the foreign tower's config), embed_dim (its space's size), connector, hidden")
    spec = Connection(**options)
    if spec.connector not in CONNECTORS:
        raise InputError(f"{where}.connector", f"is {spec.connector!r}", f"one of {list(CONNECTORS)}")
    if spec.connector == "mlp" and spec.hidden <= 0:
        raise InputError(f"{where}.hidden", f"is {spec.hidden}", "a positive width for the mlp connector")
    return spec


def inner_config(config: TowerConfig) -> TowerConfig:
    """The foreign tower's own config, rebuilt from the connected config's options."""
    from omnibind.config import tower_from_dict

    modality = registry.for_config(config).name
    return tower_from_dict(modality, connection(config).tower)


def connected_config(inner: TowerConfig, inner_dim: int, connector: str = "linear", hidden: int | None = None,
                     embed_dim: int | None = None) -> TowerConfig:
    """A connected tower config around `inner` (a tower of a space of size `inner_dim`): the outer fields
    are the foreign tower's (front end, sizes), the projection is the connector's. `hidden` defaults to
    the larger of the two spaces' sizes."""
    modality = registry.for_config(inner).name
    if "kind" not in {f.name for f in dataclasses.fields(inner)}:
        raise InputError(modality, "its towers have no kinds, so a foreign one cannot be connected",
                         "a modality whose tower config has a `kind` (image, text and audio have one)")
    if connector not in CONNECTORS:
        raise InputError("--connector", f"is {connector!r}", f"one of {list(CONNECTORS)}")
    width = 0 if connector == "linear" else (hidden or max(inner_dim, embed_dim or inner_dim))
    plain = _plain(inner)
    options = {"tower": plain, "embed_dim": inner_dim, "connector": connector, "hidden": width}
    outer = dataclasses.replace(inner, kind=KIND, projection=True, options=options)  # type: ignore[call-arg]
    connection(outer)
    return outer


def _plain(config: TowerConfig) -> dict[str, Any]:
    """A tower config as JSON-ready values, every field kept (the nested copy needs its kind too); tuples (an
    image tower's mean and std) become lists, as they come back from a saved config.json."""
    plain: dict[str, Any] = json.loads(json.dumps(dataclasses.asdict(config)))
    return plain


class Connector(nn.Module):
    """Maps unit vectors of a foreign space into this model's space (the model normalises the result)."""

    def __init__(self, kind: str, in_dim: int, out_dim: int, hidden: int = 0) -> None:
        super().__init__()
        if kind == "linear":
            self.layers = nn.Sequential(nn.Linear(in_dim, out_dim))
        else:
            self.layers = nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Linear(hidden, out_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        result: torch.Tensor = self.layers(x)
        return result


class Model(nn.Module):
    """A foreign tower (`inner`, built by its own kind in its own space) and the connector into ours."""

    def __init__(self, config: TowerConfig, embed_dim: int) -> None:
        super().__init__()
        spec = connection(config)
        inner = inner_config(config)
        self.inner = registry.for_config(inner).build_tower(inner, spec.embed_dim)
        self.connector = Connector(spec.connector, spec.embed_dim, embed_dim, spec.hidden)

    @property
    def encoder(self) -> nn.Module:
        """The foreign tower's encoder (what the trainer checkpoints activations of and FSDP shards)."""
        encoder: nn.Module = tower_attribute(self.inner, "encoder")
        return encoder

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.connect(self.inner(inputs))

    def tokens(self, inputs: torch.Tensor) -> torch.Tensor:
        """The foreign tower's token sequence (in its own width)."""
        result: torch.Tensor = tower_attribute(self.inner, "tokens")(inputs)
        return result

    def head(self, tokens: torch.Tensor) -> torch.Tensor:
        """The foreign tower's pooled vector, carried into this model's space."""
        return self.connect(tower_attribute(self.inner, "head")(tokens))

    def connect(self, foreign: torch.Tensor) -> torch.Tensor:
        """Vectors of the foreign space (unnormalised) → this model's space: normalised, then connected."""
        result: torch.Tensor = self.connector(F.normalize(foreign, dim=-1))
        return result

    def train(self, mode: bool = True) -> Model:
        """As nn.Module.train, but a frozen foreign tower stays in eval mode (its batch norms and dropout
        are left as trained: locking it must leave it exactly as it was)."""
        super().train(mode)
        if not any(p.requires_grad for p in self.inner.parameters()):
            self.inner.eval()
        return self


def tower_attribute(module: nn.Module, name: str) -> Any:
    """A tower's attribute (`tokens`, `head`, `encoder`) that the Tower protocol promises but nn.Module's
    typing cannot see."""
    return getattr(module, name)


def input_spec(config: TowerConfig) -> InputSpec:
    """The foreign tower's input."""
    inner = inner_config(config)
    return registry.for_config(inner).input_spec(inner)


def build_preprocessor(config: TowerConfig, assets: dict[str, Any] | None = None) -> Preprocessor | None:
    """The foreign tower's preprocessor (its front end or tokenizer)."""
    inner = inner_config(config)
    processor: Preprocessor | None = registry.for_config(inner).build_preprocessor(inner, dict(assets or {}))
    return processor


def summary(config: TowerConfig) -> str:
    """What `omnibind info` says: the foreign tower's kind, its space and the connector."""
    spec = connection(config)
    inner = inner_config(config)
    shape = "linear" if spec.connector == "linear" else f"mlp ({spec.hidden} hidden)"
    return f"connected {getattr(inner, 'kind', '')} tower of a {spec.embed_dim}-d space, {shape} connector"
