"""The contract every modality module fulfils: its config, tower, preprocessor, file types, input spec,
prompts, and what the search index records and shows for it. Everything outside the modality modules
reads a `Modality` from the registry instead of branching on a modality's name."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import torch
from torch import nn


@dataclass
class TowerConfig:
    """Encoder shape shared by every tower; `projection` adds a linear map to the model's embed_dim."""

    width: int = 768
    depth: int = 12
    heads: int = 12
    mlp_dim: int = 3072
    projection: bool = False
    pool: str = "map"
    eps: float = 1e-6


@dataclass(frozen=True)
class InputSpec:
    """Shape (without the batch axis) and dtype of one tower's preprocessed input."""

    shape: tuple[int, ...]
    dtype: torch.dtype


@runtime_checkable
class Preprocessor(Protocol):
    """Turns raw inputs (paths, bytes, strings, ...) into tower inputs; what `encode`, the data loader
    and export call."""

    def one(self, source: Any) -> torch.Tensor:
        """The tower input of one example, without a batch axis."""
        ...

    def batch(self, sources: Sequence[Any]) -> torch.Tensor:
        """The stacked tower inputs of several examples."""
        ...

    @property
    def input_spec(self) -> InputSpec:
        """Shape (without batch) and dtype of what `one` returns; the loader zero-fills absent inputs so."""
        ...


@runtime_checkable
class Tower(Protocol):
    """A tower maps a preprocessed batch to one (unnormalised) vector per example; `tokens` gives the
    per-position features before pooling (for decoders and dense uses)."""

    def __call__(self, inputs: torch.Tensor) -> torch.Tensor: ...

    def tokens(self, inputs: torch.Tensor) -> torch.Tensor: ...


class Modality(ABC):
    """Everything omnibind knows about one modality. Subclass it, then `omnibind.modalities.register()` an
    instance; see docs/architecture.md for a worked example."""

    name: ClassVar[str]
    config_class: ClassVar[type[TowerConfig]]
    # File-name extensions (without the dot) of its media files, preferred first. A modality without them
    # (text) has no files of its own: it lives inside samples and queries.
    extensions: ClassVar[tuple[str, ...]] = ()
    # WebDataset field names that hold it in a sample, preferred first (default: its extensions).
    fields: ClassVar[tuple[str, ...]] = ()
    canonical_extensions: ClassVar[dict[str, str]] = {}  # spellings written into shards (jpeg -> jpg)
    templates: ClassVar[tuple[str, ...]] = ("{}",)  # zero-shot prompts ("a photo of {}.")
    input_name: ClassVar[str] = "inputs"  # the ONNX graph's input name
    expected: ClassVar[str] = "a supported file"  # how error messages describe a valid input
    noun: ClassVar[str] = ""  # how messages name one item ("a picture"); default "a <name> file"
    asset_names: ClassVar[tuple[str, ...]] = ()  # checkpoint files its preprocessor reads (spiece.model)

    # ------------------------------------------------------------------------------------ model side

    @abstractmethod
    def build_tower(self, config: TowerConfig, embed_dim: int) -> nn.Module:
        """The tower module: preprocessed batch → (B, embed_dim) vectors."""

    @abstractmethod
    def input_spec(self, config: TowerConfig) -> InputSpec:
        """Shape and dtype of one preprocessed example, for synthetic batches, padding and export."""

    def random_input(self, config: TowerConfig, batch: int, generator: torch.Generator) -> torch.Tensor:
        """A random batch shaped like real preprocessed inputs (export checks, smoke runs)."""
        spec = self.input_spec(config)
        return torch.rand((batch, *spec.shape), generator=generator).to(spec.dtype) * 2 - 1

    def prototypes(self, config: TowerConfig, classes: int, generator: torch.Generator) -> torch.Tensor:
        """One random input per hidden class, for learnable synthetic batches (standard normal values)."""
        spec = self.input_spec(config)
        return torch.randn((classes, *spec.shape), generator=generator).to(spec.dtype)

    def noisy_copy(self, prototype: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """A noisy version of class prototypes, for learnable synthetic batches (Gaussian noise)."""
        return prototype + torch.randn(prototype.shape, generator=generator)

    def resolve_config(self, values: dict[str, Any]) -> dict[str, Any]:
        """Rewrite config fields of older layouts into today's (a no-op unless a modality changed them)."""
        return values

    def config_overrides(self, patch: int | None, embed_dim: int, width: int) -> dict[str, Any]:
        """Defaults a named size ("B/16") sets on this tower beyond width/depth/heads/mlp_dim."""
        out: dict[str, Any] = {"projection": embed_dim != width}
        if patch is not None and "patch_size" in {f for f in self.config_class.__dataclass_fields__}:
            out["patch_size"] = patch
        return out

    def summary(self, config: TowerConfig, preprocessor: Preprocessor | None) -> str:
        """One line describing the tower's input, for `omnibind info`."""
        return ""

    # ------------------------------------------------------------------------------- preprocessing

    @abstractmethod
    def build_preprocessor(self, config: TowerConfig, assets: dict[str, Path]) -> Preprocessor | None:
        """The preprocessor matching `config`; `assets` are a checkpoint's extra files (a tokenizer).
        None when it cannot be built without an asset that is absent."""

    def asset_files(self, preprocessor: Preprocessor) -> dict[str, Path]:
        """Files a checkpoint must carry for this preprocessor, by the name they are saved under."""
        return {}

    def read_field(self, data: bytes) -> Any:
        """The raw source a sample's stored bytes stand for (media: the bytes; text: the string);
        None means "absent" (an empty caption)."""
        return data

    def validate(self, data: bytes) -> str | None:
        """A reason to skip a stored sample before decoding it (a truncated file), or None."""
        return None

    def skip_reason(self, stage: str) -> str:
        """How the data loader's report names a sample skipped at `stage` ("read", "decode", "invalid")."""
        return {"read": f"{self.name} unreadable", "decode": f"{self.name} undecodable",
                "invalid": f"{self.name} truncated"}[stage]

    # ----------------------------------------------------------------------------------- files

    def sniff(self, data: bytes) -> bool:
        """True when untyped bytes hold this modality (read from the header only)."""
        return False

    def check_header(self, data: bytes, field: str) -> None:
        """Refuse an uploaded file whose header is undecodable or too large (raises UploadError)."""
        return None

    def describe(self, data: bytes, name: str) -> dict[str, Any]:
        """What the search index records about a file besides its hash (dimensions, duration...)."""
        return {}

    def describe_file(self, path: Path, name: str) -> dict[str, Any]:
        """`describe` of a file on disk; override it to read only the header of a large file (the indexer
        calls this, so a one-hour recording need not be read whole)."""
        return self.describe(path.read_bytes(), name)

    def preview(self, path: Path) -> tuple[bytes, str]:
        """A small preview of a file for the results grid, with its media type."""
        raise NotImplementedError(f"{self.name}: no preview")

    def save_example(self, source: Any, config: TowerConfig, folder: Path, stem: str) -> str:
        """Write a report's view of one example (a thumbnail, a clip) into `folder`; the file's name."""
        raise NotImplementedError(f"{self.name}: no report media")

    def item_noun(self) -> str:
        """How messages name one item of this modality: its `noun`, else "a <name> file"."""
        return self.noun or f"a {self.name} file"

    @property
    def is_media(self) -> bool:
        """Whether this modality has files of its own (which are indexed, uploaded and previewed)."""
        return bool(self.extensions)

    def field_names(self) -> tuple[str, ...]:
        """The sample fields that hold this modality, preferred first."""
        return self.fields or self.extensions
