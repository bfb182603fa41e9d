"""The text modality: the SigLIP text tower, the SentencePiece tokenizer a checkpoint carries, and
captions stored in samples as UTF-8 `txt` fields."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import torch
from torch import nn

from omnibind.errors import InputError
from omnibind.modalities.base import InputSpec, Modality, Preprocessor, TowerConfig

TOKENIZER_FILE = "spiece.model"
BPE_TOKENIZER_FILE = "tokenizer.json"  # a `tokenizers` tokenizer (CLAP's RoBERTa BPE)

TEXT_TOWER_KINDS = {
    "siglip": "omnibind.models.text",  # pre-LN, last-token pooling, SentencePiece (SigLIP)
    "roberta": "omnibind.models.clap_text",  # post-LN RoBERTa with its pooler (CLAP), byte-level BPE
    "siglip2": "omnibind.models.siglip2_text",  # SigLIP's tower, Gemma tokenizer.json lower-cased (SigLIP 2)
    "anchored": "omnibind.compose.anchored",  # a composed model's text tower + foreign ones (`omnibind compose`)
    "connected": "omnibind.compose.connected",  # a foreign text tower + a connector (`omnibind compose`)
}
"""Text tower kinds → the module that builds them: `Model(config, embed_dim)`, and where the kind has its own
tokenizer, `build_preprocessor(config, assets)`."""

ANCHOR_SLOTS = 2
"""Foreign text towers a composed model may carry (`omnibind compose`); each one's tokenizer is saved with a
prefix (`anchor0.spiece.model`), so that it does not clash with the model's own."""


def anchor_asset(slot: int, name: str) -> str:
    """The name a composed model saves anchor `slot`'s tokenizer file `name` under."""
    return f"anchor{slot}.{name}"


@dataclass
class TextConfig(TowerConfig):
    """Text transformer: token ids padded to `max_len`, pooled at the last position as in SigLIP, or another
    `kind` of tower (TEXT_TOWER_KINDS) whose extra settings sit in `options`."""

    vocab_size: int = 32000
    max_len: int = 64
    pad_id: int = 1
    eos_id: int = 1
    lower_case: bool = True
    projection: bool = True
    pool: str = "last"
    kind: str = "siglip"
    options: dict[str, Any] = field(default_factory=dict)
    # Left out of the saved config while at their defaults, so that configs (and the search index's model
    # fingerprints) written before tower kinds existed stay byte for byte the same.
    LAYOUT_OPTIONAL: ClassVar[tuple[str, ...]] = ("kind", "options")

    def __post_init__(self) -> None:
        if self.kind not in TEXT_TOWER_KINDS:
            raise InputError("towers.text.kind", f"is {self.kind!r}", f"one of {sorted(TEXT_TOWER_KINDS)}")


class Text(Modality):
    """Captions, prompts and text queries."""

    name = "text"
    config_class = TextConfig
    fields = ("txt",)
    input_name = "input_ids"
    asset_names = (TOKENIZER_FILE, BPE_TOKENIZER_FILE,
                   *(anchor_asset(i, n) for i in range(ANCHOR_SLOTS) for n in (TOKENIZER_FILE, BPE_TOKENIZER_FILE)))
    expected = "a non-empty UTF-8 string"

    def build_tower(self, config: TowerConfig, embed_dim: int) -> nn.Module:
        assert isinstance(config, TextConfig)
        tower: nn.Module = _kind_module(config).Model(config, embed_dim)
        return tower

    def input_spec(self, config: TowerConfig) -> InputSpec:
        assert isinstance(config, TextConfig)
        return InputSpec((config.max_len,), torch.int64)

    def random_input(self, config: TowerConfig, batch: int, generator: torch.Generator) -> torch.Tensor:
        assert isinstance(config, TextConfig)
        return torch.randint(0, config.vocab_size, (batch, config.max_len), generator=generator)

    def prototypes(self, config: TowerConfig, classes: int, generator: torch.Generator) -> torch.Tensor:
        """Random token ids (never the pad/eos ids 0 and 1)."""
        assert isinstance(config, TextConfig)
        return torch.randint(2, config.vocab_size, (classes, config.max_len), generator=generator)

    def noisy_copy(self, prototype: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Each token replaced by a random one with probability 0.2."""
        noise = torch.randint(2, int(prototype.max().item()) + 1, prototype.shape, generator=generator)
        keep = torch.rand(prototype.shape, generator=generator) > 0.2
        return torch.where(keep, prototype, noise)

    def config_overrides(self, patch: int | None, embed_dim: int, width: int) -> dict[str, Any]:
        return {}  # the text tower always projects (SigLIP's head) and has no patches

    def summary(self, config: TowerConfig, preprocessor: Preprocessor | None) -> str:
        assert isinstance(config, TextConfig)
        own = getattr(_kind_module(config), "summary", None)
        if own is not None:  # a composed model's text tower describes its parts
            return str(own(config))
        pieces = getattr(preprocessor, "vocab_size", None)
        vocab = f", tokenizer {pieces} pieces" if pieces is not None else ", no tokenizer"
        return f"{config.max_len} tokens, vocab {config.vocab_size}{vocab}"

    def build_preprocessor(self, config: TowerConfig, assets: dict[str, Path]) -> Preprocessor | None:
        """The SentencePiece tokenizer, when the checkpoint has one (`assets["spiece.model"]`)."""
        from omnibind.preprocess.text import Tokenizer

        assert isinstance(config, TextConfig)
        own = getattr(_kind_module(config), "build_preprocessor", None)
        if own is not None:
            processor: Preprocessor | None = own(config, assets)
            return processor
        model_file = assets.get(TOKENIZER_FILE)
        return None if model_file is None else Tokenizer(model_file, config.max_len, config.lower_case)

    def asset_files(self, preprocessor: Preprocessor) -> dict[str, Path]:
        """The tokenizer file, saved under the name its kind reads (`asset_name`, default spiece.model); a
        preprocessor with several files (a composed model's) lists them in its `asset_files` dict."""
        several = getattr(preprocessor, "asset_files", None)
        if isinstance(several, dict):
            return dict(several)
        model_file = getattr(preprocessor, "model_file", None)
        name = getattr(preprocessor, "asset_name", TOKENIZER_FILE)
        return {} if model_file is None else {name: Path(model_file)}

    def read_field(self, data: bytes) -> Any:
        """The caption as a string; an empty one means "no text" (the tokenizer rejects it by design)."""
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as err:
            raise InputError("text", f"not UTF-8 ({err})", self.expected) from err
        return text.strip() or None

    def skip_reason(self, stage: str) -> str:
        return {"read": "text not UTF-8", "decode": "text not tokenizable", "invalid": "text invalid"}[stage]

    def save_example(self, source: Any, config: TowerConfig, folder: Path, stem: str) -> str:
        raise NotImplementedError("text is shown inline, not saved as a file")


def _kind_module(config: TextConfig) -> ModuleType:
    """The module that builds this kind of text tower (imported on first use)."""
    return importlib.import_module(TEXT_TOWER_KINDS[config.kind])


TEXT = Text()
