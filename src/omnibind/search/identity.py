"""Which model an index was built with: vectors from two different models are not comparable, so an index
records its model's name, embedding size and a fingerprint of its weights, and refuses any other model.

The fingerprint hashes the model's config dict, whose layout changed with the modality registry (format-1
tower dicts carried `embed_dim`, and the audio front end's fields sat flat in the tower). An index recorded by
that code is still recognised: on a mismatch the fingerprint is also computed over the format-1 layout."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from omnibind.errors import InputError
from omnibind.models.model import OmniBind

SAMPLES_PER_TENSOR = 4096


@dataclass(frozen=True)
class ModelIdentity:
    """Name (checkpoint folder or hub id), embedding size, towers and weight fingerprint of a model."""

    name: str
    embed_dim: int
    modalities: tuple[str, ...]
    fingerprint: str

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form, as stored in the index's meta table."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelIdentity:
        """Inverse of `to_dict`."""
        return cls(str(data["name"]), int(data["embed_dim"]), tuple(data["modalities"]), str(data["fingerprint"]))


def model_name(name_or_path: str | Path) -> str:
    """How an index names its model: an existing folder as an absolute path, anything else (a hub id) as is."""
    path = Path(name_or_path)
    return str(path.resolve()) if path.exists() else str(name_or_path)


@torch.no_grad()
def fingerprint(model: OmniBind, config: dict[str, Any] | None = None) -> str:
    """A short hash of the config (`config`, default today's `model.config.to_dict()`) and of evenly spaced
    samples of every weight (rounded to bfloat16, so the same weights loaded in float32 or bfloat16, on any
    device, give the same fingerprint)."""
    layout = model.config.to_dict() if config is None else config
    digest = hashlib.sha256(json.dumps(layout, sort_keys=True).encode())
    for key, tensor in sorted(model.state_dict().items()):
        flat = tensor.detach().reshape(-1)
        step = max(1, flat.numel() // SAMPLES_PER_TENSOR)
        sample = flat[::step][:SAMPLES_PER_TENSOR].to("cpu", torch.bfloat16).view(torch.int16)
        digest.update(f"{key}:{tuple(tensor.shape)}".encode())
        digest.update(sample.numpy().tobytes())
    return digest.hexdigest()[:16]


def identify(model: OmniBind, name: str | Path) -> ModelIdentity:
    """The identity an index records for `model`, loaded from `name`."""
    return ModelIdentity(model_name(name), model.config.embed_dim, model.modalities, fingerprint(model))


def v1_config(config: dict[str, Any]) -> dict[str, Any]:
    """A config dict in the format-1 layout the fingerprints of older indexes hashed: every tower dict with
    the model's `embed_dim` and its nested settings (the audio `front_end`) flattened into it."""
    towers = {}
    for name, tower in config["towers"].items():
        flat: dict[str, Any] = {}
        for key, value in tower.items():
            flat.update(value if isinstance(value, dict) else {key: value})
        towers[name] = {**flat, "embed_dim": config["embed_dim"]}
    return {**config, "towers": towers}


def legacy_fingerprints(model: OmniBind) -> tuple[str, ...]:
    """The fingerprints older code recorded for this model (today: the format-1 config layout)."""
    return (fingerprint(model, v1_config(model.config.to_dict())),)


def check_same_model(index: str | Path, recorded: ModelIdentity, given: ModelIdentity,
                     model: OmniBind | None = None) -> None:
    """Refuse a model other than the index's own, naming both; with `model`, a fingerprint recorded by older
    code (see `legacy_fingerprints`) is accepted too."""
    if recorded.embed_dim == given.embed_dim and (
        recorded.fingerprint == given.fingerprint
        or (model is not None and recorded.fingerprint in legacy_fingerprints(model))
    ):
        return
    raise InputError(
        index,
        f"was built with model {recorded.name} ({recorded.embed_dim}-d, fingerprint {recorded.fingerprint}), "
        f"not {given.name} ({given.embed_dim}-d, fingerprint {given.fingerprint})",
        f"--model {recorded.name}, or a new --index folder for the other model",
    )
