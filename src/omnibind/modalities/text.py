"""The text modality: the SigLIP text tower, the SentencePiece tokenizer a checkpoint carries, and
captions stored in samples as UTF-8 `txt` fields."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from omnibind.errors import InputError
from omnibind.modalities.base import InputSpec, Modality, Preprocessor, TowerConfig

TOKENIZER_FILE = "spiece.model"


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


class Text(Modality):
    """Captions, prompts and text queries."""

    name = "text"
    config_class = TextConfig
    fields = ("txt",)
    input_name = "input_ids"
    asset_names = (TOKENIZER_FILE,)
    expected = "a non-empty UTF-8 string"

    def build_tower(self, config: TowerConfig, embed_dim: int) -> nn.Module:
        from omnibind.models import text

        assert isinstance(config, TextConfig)
        return text.Model(config, embed_dim)

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
        pieces = getattr(preprocessor, "vocab_size", None)
        vocab = f", tokenizer {pieces} pieces" if pieces is not None else ", no tokenizer"
        return f"{config.max_len} tokens, vocab {config.vocab_size}{vocab}"

    def build_preprocessor(self, config: TowerConfig, assets: dict[str, Path]) -> Preprocessor | None:
        """The SentencePiece tokenizer, when the checkpoint has one (`assets["spiece.model"]`)."""
        from omnibind.preprocess.text import Tokenizer

        assert isinstance(config, TextConfig)
        model_file = assets.get(TOKENIZER_FILE)
        return None if model_file is None else Tokenizer(model_file, config.max_len, config.lower_case)

    def asset_files(self, preprocessor: Preprocessor) -> dict[str, Path]:
        model_file = getattr(preprocessor, "model_file", None)
        return {} if model_file is None else {TOKENIZER_FILE: Path(model_file)}

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


TEXT = Text()
