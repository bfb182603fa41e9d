"""`omnibind compose`: one model from several, whose base space is the first source's. Every tower another
source adds is a connected tower (its own tower + a connector into the base space); a source that shares the
base's text modality brings its text tower along as the anchor its connector is trained through."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

import omnibind.modalities as registry
from omnibind.compose.anchored import Anchor, anchored_config
from omnibind.compose.connected import CONNECTORS, connected_config
from omnibind.config import ModelConfig, TowerConfig
from omnibind.errors import InputError
from omnibind.models.model import OmniBind
from omnibind.processors import build_processors

OPTION = "--from"


@dataclass(frozen=True)
class Source:
    """One `--from MODALITIES=CHECKPOINT`: the modalities taken from a checkpoint (a folder or hub id)."""

    modalities: tuple[str, ...]
    checkpoint: str
    spec: str

    @property
    def where(self) -> str:
        """How errors name this source: the option as given."""
        return f"{OPTION} {self.spec}"


@dataclass(frozen=True)
class Plan:
    """What each source contributes: the base's towers, and per other source its new (connected) towers and
    whether its text tower anchors them."""

    base: Source
    others: tuple[tuple[Source, tuple[str, ...], bool], ...]


def parse_source(spec: str) -> Source:
    """`image,text=CKPT` → Source; errors name the spec and what a spec looks like."""
    where = f"{OPTION} {spec}"
    names, sep, checkpoint = spec.partition("=")
    expected = "MODALITIES=CHECKPOINT, e.g. image,text=google/siglip2-base-patch16-224"
    if not sep or not checkpoint.strip():
        raise InputError(where, "names no checkpoint", expected)
    modalities = tuple(m.strip() for m in names.split(",") if m.strip())
    if not modalities:
        raise InputError(where, "names no modality", expected)
    known = registry.names()
    for m in modalities:
        if m not in known:
            raise InputError(where, f"unknown modality {m!r}", f"modalities among {', '.join(known)}")
    repeated = sorted({m for m in modalities if modalities.count(m) > 1})
    if repeated:
        raise InputError(where, f"names {repeated[0]} twice", "each modality once")
    return Source(modalities, checkpoint.strip(), spec)


def plan(sources: Sequence[Source]) -> Plan:
    """Check who provides what: the first source is the base; every other one adds at least one modality no
    earlier source has (a second source of a modality is refused) and may share the base's text (its anchor)."""
    if not sources:
        raise InputError(OPTION, "no source given",
                         "the base first: --from image,text=CKPT_A, then e.g. --from audio,text=CKPT_B")
    base, text = sources[0], registry.TEXT.name
    owner = dict.fromkeys(base.modalities, base)
    others = []
    for source in sources[1:]:
        anchored = text in source.modalities and text in base.modalities
        new = tuple(m for m in source.modalities if not (anchored and m == text))
        for m in new:
            if m in owner:
                raise InputError(source.where, f"a second source for {m} (also from {owner[m].where})",
                                 f"one source per modality; only {text} may repeat the base's, as the anchor")
            owner[m] = source
        if not new:
            raise InputError(source.where, "adds no modality to the base", "a modality the base has not")
        others.append((source, new, anchored))
    if sum(anchored for _, _, anchored in others) > registry.text.ANCHOR_SLOTS:
        raise InputError(OPTION, f"more than {registry.text.ANCHOR_SLOTS} sources share the base's {text}",
                         f"at most {registry.text.ANCHOR_SLOTS} anchored sources")
    return Plan(base, tuple(others))


def compose(specs: Sequence[str], connector: str = "linear", hidden: int | None = None, seed: int = 0,
            loader: Any = None) -> OmniBind:
    """The composed model of `--from` specs (base first), with fresh connectors (seeded); `loader` reads a
    checkpoint (default omnibind.load: a folder or a hub id through huggingface_hub's cache)."""
    if connector not in CONNECTORS:
        raise InputError("--connector", f"is {connector!r}", f"one of {list(CONNECTORS)}")
    if hidden is not None and hidden <= 0:
        raise InputError("--hidden", f"is {hidden}", "a positive width")
    layout = plan([parse_source(s) for s in specs])
    if loader is None:
        from omnibind.checkpoint import load as loader
    text = registry.TEXT.name
    base_model = _load(loader, layout.base)
    dim = base_model.config.embed_dim
    towers: dict[str, TowerConfig] = {m: base_model.config.towers[m] for m in layout.base.modalities}
    state = {k: v for k, v in base_model.state_dict().items() if _tower_of(k) in (None, *layout.base.modalities)}
    assets = _assets(base_model, layout.base.modalities)
    any_anchor = any(anchored for _, _, anchored in layout.others)
    if any_anchor:  # the base text tower moves under towers.text.base
        base_text = _under(state, f"towers.{text}.", f"towers.{text}.base.")
        state = {k: v for k, v in state.items() if _tower_of(k) != text} | base_text
    anchors: list[Anchor] = []
    for source, new, anchored in layout.others:
        model = _load(loader, source)
        own = model.state_dict()
        for m in new:
            try:
                towers[m] = connected_config(model.config.towers[m], model.config.embed_dim, connector, hidden, dim)
            except InputError as err:
                raise InputError(source.where, f"cannot connect its {m} tower: {err.problem}", err.expected) from err
            state.update(_under(own, f"towers.{m}.", f"towers.{m}.inner."))
        assets.update(_assets(model, new))
        if anchored:
            slot = len(anchors)
            for where, owner in ((layout.base.where, base_model), (source.where, model)):
                if text not in owner.processors:
                    raise InputError(where, f"its {text} tower has no tokenizer",
                                     "a checkpoint with its tokenizer files (the anchor reads the same sentences)")
            foreign_text = model.config.towers[text]
            assert isinstance(foreign_text, registry.TextConfig)
            anchors.append(Anchor(foreign_text, model.config.embed_dim, new))
            state.update(_under(own, f"towers.{text}.", f"towers.{text}.anchors.{slot}."))
            assets.update({registry.text.anchor_asset(slot, n): p
                           for n, p in registry.TEXT.asset_files(model.processors[text]).items()})
    if anchors:
        base_config = towers[text]
        assert isinstance(base_config, registry.TextConfig)
        towers[text] = anchored_config(base_config, anchors)
    config = ModelConfig(towers={m: towers[m] for m in _order(towers)}, embed_dim=dim,
                         logit_scale_init=base_model.logit_scale.item(), logit_bias_init=base_model.logit_bias.item())
    torch.manual_seed(seed)
    composed = OmniBind(config, build_processors(config, assets=assets))
    missing, unexpected = composed.load_state_dict(state, strict=False)
    fresh = [k for k in missing if ".connector." not in k]
    if fresh or unexpected:
        raise InputError("compose", f"weights do not line up (missing {fresh[:3]}, unexpected {unexpected[:3]})",
                         "checkpoints whose weights match their configs")
    return composed.eval()


def save_composed(model: OmniBind, out: str | Path) -> Path:
    """Save a composed model as an omnibind checkpoint."""
    from omnibind.checkpoint import save

    return save(model, out)


def _load(loader: Any, source: Source) -> OmniBind:
    """A source's checkpoint, checked to have every modality the spec names."""
    model: OmniBind = loader(source.checkpoint)
    for m in source.modalities:
        if m not in model.modalities:
            raise InputError(source.where, f"{source.checkpoint} has no {m} tower",
                             f"modalities of that checkpoint: {', '.join(model.modalities)}")
    return model


def _assets(model: OmniBind, modalities: Sequence[str]) -> dict[str, Path]:
    """The preprocessor files of some of a model's towers, by the names checkpoints save them under."""
    files: dict[str, Path] = {}
    for m in modalities:
        if m in model.processors:
            files.update(registry.get(m).asset_files(model.processors[m]))
    return files


def _under(state: dict[str, torch.Tensor], old: str, new: str) -> dict[str, torch.Tensor]:
    """The entries of `state` under the prefix `old`, renamed under `new`."""
    return {new + k[len(old):]: v for k, v in state.items() if k.startswith(old)}


def _tower_of(name: str) -> str | None:
    """"image" for "towers.image.…", None for parameters outside the towers (t', b)."""
    return name.split(".")[1] if name.startswith("towers.") else None


def _order(towers: dict[str, TowerConfig]) -> list[str]:
    """Towers in registry order (image, text, audio, then plugins), as every other model lists them."""
    return sorted(towers, key=lambda m: registry.names().index(m))

