"""Which model an index was built with: vectors from two different models are not comparable, so an index
records its model's name, embedding size and a fingerprint of its weights, and refuses any other model."""

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
def fingerprint(model: OmniBind) -> str:
    """A short hash of the config and of evenly spaced samples of every weight (rounded to bfloat16, so the
    same weights loaded in float32 or bfloat16, on any device, give the same fingerprint)."""
    digest = hashlib.sha256(json.dumps(model.config.to_dict(), sort_keys=True).encode())
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


def check_same_model(index: Path, recorded: ModelIdentity, given: ModelIdentity) -> None:
    """Refuse a model other than the index's own, naming both."""
    if recorded.fingerprint == given.fingerprint and recorded.embed_dim == given.embed_dim:
        return
    raise InputError(
        index,
        f"was built with model {recorded.name} ({recorded.embed_dim}-d, fingerprint {recorded.fingerprint}), "
        f"not {given.name} ({given.embed_dim}-d, fingerprint {given.fingerprint})",
        f"--model {recorded.name}, or a new --index folder for the other model",
    )
