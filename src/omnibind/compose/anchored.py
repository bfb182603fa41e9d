"""The "anchored" text tower kind: this model's text tower plus, for each connected foreign space, that
space's own text tower (its anchor). Both read the same sentences, each with its own tokenizer: the
preprocessor concatenates the token ids (base first), the tower embeds the base part alone, and the text
bridge objective (objectives/text_bridge.py) embeds the anchors' parts to train the connectors (C-MCR)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

import omnibind.modalities as registry
from omnibind.compose.connected import tower_attribute
from omnibind.errors import InputError
from omnibind.modalities import InputSpec, Preprocessor, TextConfig, TowerConfig
from omnibind.modalities.text import ANCHOR_SLOTS, anchor_asset

KIND = "anchored"


@dataclass(frozen=True)
class Anchor:
    """One foreign space's text tower: its config, the size of its space and the connected modalities
    whose connectors map that space into ours."""

    tower: TextConfig
    embed_dim: int
    modalities: tuple[str, ...]


def parts(config: TextConfig) -> tuple[TextConfig, list[Anchor]]:
    """The base text config and the anchors an anchored config's options describe."""
    from omnibind.config import tower_from_dict

    where = "towers.text.options"
    options = config.options
    if set(options) != {"base", "anchors"} or not isinstance(options["anchors"], list):
        raise InputError(where, f"has keys {sorted(options)}", "base (this space's text tower) and anchors (a list)")
    base = tower_from_dict(registry.TEXT.name, options["base"])
    anchors = []
    for i, entry in enumerate(options["anchors"]):
        if not isinstance(entry, dict) or set(entry) != {"tower", "embed_dim", "modalities"}:
            raise InputError(f"{where}.anchors[{i}]", f"is {entry!r}", "{tower, embed_dim, modalities}")
        tower = tower_from_dict(registry.TEXT.name, entry["tower"])
        assert isinstance(tower, TextConfig)
        anchors.append(Anchor(tower, int(entry["embed_dim"]), tuple(entry["modalities"])))
    assert isinstance(base, TextConfig)
    return base, anchors


def anchored_config(base: TextConfig, anchors: Sequence[Anchor]) -> TextConfig:
    """An anchored text config: the base tower's fields, with max_len the total of the concatenated ids and
    vocab_size the smallest vocabulary (so random ids suit every part)."""
    if not anchors or len(anchors) > ANCHOR_SLOTS:
        raise InputError("anchors", f"{len(anchors)} given", f"1 to {ANCHOR_SLOTS} foreign text towers")
    options = {"base": dataclasses.asdict(base),
               "anchors": [{"tower": dataclasses.asdict(a.tower), "embed_dim": a.embed_dim,
                            "modalities": list(a.modalities)} for a in anchors]}
    towers = [base, *(a.tower for a in anchors)]
    return dataclasses.replace(base, kind=KIND, options=options, max_len=sum(t.max_len for t in towers),
                               vocab_size=min(t.vocab_size for t in towers))


class Model(nn.Module):
    """The base text tower (`base`, embedding the first block of ids) and the anchors (`anchors["0"]`...)."""

    def __init__(self, config: TowerConfig, embed_dim: int) -> None:
        super().__init__()
        assert isinstance(config, TextConfig)
        base, anchors = parts(config)
        self.base = registry.TEXT.build_tower(base, embed_dim)
        self.anchors = nn.ModuleDict({str(i): registry.TEXT.build_tower(a.tower, a.embed_dim)
                                      for i, a in enumerate(anchors)})
        self.lengths = [base.max_len, *(a.tower.max_len for a in anchors)]
        self.slot_of = {m: str(i) for i, a in enumerate(anchors) for m in a.modalities}

    @property
    def encoder(self) -> nn.Module:
        """The base tower's encoder (what the trainer checkpoints activations of and FSDP shards)."""
        encoder: nn.Module = tower_attribute(self.base, "encoder")
        return encoder

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.tokens(ids))

    def tokens(self, ids: torch.Tensor) -> torch.Tensor:
        """The base tower's token sequence (of the base block of ids)."""
        result: torch.Tensor = tower_attribute(self.base, "tokens")(ids[:, : self.lengths[0]])
        return result

    def head(self, tokens: torch.Tensor) -> torch.Tensor:
        result: torch.Tensor = tower_attribute(self.base, "head")(tokens)
        return result

    def anchor(self, modality: str, ids: torch.Tensor) -> torch.Tensor:
        """The foreign text embedding (unnormalised, in the foreign space) that `modality`'s connector maps."""
        slot = self.slot_of.get(modality)
        if slot is None:
            raise InputError(modality, "no foreign text tower anchors this modality",
                             f"one of {sorted(self.slot_of)}")
        start = sum(self.lengths[: int(slot) + 1])
        result: torch.Tensor = self.anchors[slot](ids[:, start : start + self.lengths[int(slot) + 1]])
        return result

    def train(self, mode: bool = True) -> Model:
        """As nn.Module.train, but frozen text towers stay in eval mode (dropout off, as they were trained)."""
        super().train(mode)
        for tower in (self.base, *self.anchors.values()):
            if not any(p.requires_grad for p in tower.parameters()):
                tower.eval()
        return self


class AnchoredTokenizer:
    """Each tower's tokenizer on the same sentences, ids concatenated (base first)."""

    def __init__(self, parts: Sequence[Preprocessor], files: dict[str, Path]) -> None:
        self.parts = list(parts)
        self.asset_files = files  # what a checkpoint saves, under the names build_preprocessor reads
        self.vocab_size = getattr(self.parts[0], "vocab_size", None)

    def one(self, source: Any) -> torch.Tensor:
        return torch.cat([p.one(source) for p in self.parts])

    def batch(self, sources: Sequence[Any]) -> torch.Tensor:
        return torch.cat([p.batch(sources) for p in self.parts], dim=1)

    @property
    def input_spec(self) -> InputSpec:
        return InputSpec((sum(p.input_spec.shape[0] for p in self.parts),), torch.int64)


def build_preprocessor(config: TextConfig, assets: dict[str, Path]) -> AnchoredTokenizer | None:
    """The base tokenizer (from the usual asset names) and each anchor's (from `anchor<i>.<name>`); None
    when any of them is missing."""
    base, anchors = parts(config)
    found = [registry.TEXT.build_preprocessor(base, assets)]
    files = _asset_files(found[0])
    for i, anchor in enumerate(anchors):
        own = {name[len(anchor_asset(i, "")):]: path for name, path in assets.items()
               if name.startswith(anchor_asset(i, ""))}
        found.append(registry.TEXT.build_preprocessor(anchor.tower, own))
        files.update({anchor_asset(i, name): path for name, path in _asset_files(found[-1]).items()})
    if any(p is None for p in found):
        return None
    return AnchoredTokenizer([p for p in found if p is not None], files)


def summary(config: TextConfig) -> str:
    """What `omnibind info` says: the base text tower and each anchor."""
    base, anchors = parts(config)
    described = [f"{a.tower.kind} text tower ({a.tower.max_len} tokens) of a {a.embed_dim}-d space for "
                 f"{', '.join(a.modalities)}" for a in anchors]
    return f"{base.max_len} tokens, vocab {base.vocab_size} ({base.kind}); anchors: {'; '.join(described)}"


def _asset_files(processor: Preprocessor | None) -> dict[str, Path]:
    return {} if processor is None else registry.TEXT.asset_files(processor)


__all__ = ["KIND", "Anchor", "AnchoredTokenizer", "Model", "anchored_config", "parts"]
