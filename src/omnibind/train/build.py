"""Build what a training config names: the model (fresh, or grown from a checkpoint), the objective and the
data."""

from __future__ import annotations

import dataclasses
from typing import Any

import omnibind
from omnibind import checkpoint
from omnibind.config import ModelConfig, model_config, tower_config
from omnibind.data.decode import input_specs
from omnibind.errors import InputError
from omnibind.models.model import OmniBind
from omnibind.objectives import Objective, ObjectiveSetup, build_objective
from omnibind.processors import build_processors
from omnibind.train.config import TrainConfig
from omnibind.train.distributed import DistInfo
from omnibind.train.synthetic import SyntheticBatches


def build_model(cfg: TrainConfig) -> OmniBind:
    """A fresh model of the configured sizes, or `init_from`'s towers (all, or `init_towers`) plus fresh
    ones for the rest (binding a new modality; LiT's text tower)."""
    section = cfg.model
    if section.init_from is None:
        config = model_config(section.variant, tuple(section.modalities), section.embed_dim, **section.towers)
        inits = {"logit_scale_init": section.logit_scale_init, "logit_bias_init": section.logit_bias_init}
        config = dataclasses.replace(config, **{k: v for k, v in inits.items() if v is not None})
        return OmniBind(config, build_processors(config, section.tokenizer))
    base = omnibind.load(section.init_from, kind="embedding")  # a captioning run's towers too (CapPa → LiT)
    shared = [m for m in section.modalities if m in base.config.towers]
    kept_towers = shared if section.init_towers is None else section.init_towers
    for m in kept_towers:
        if m not in shared:
            raise InputError("model.init_towers", f"{m!r} is not a tower of both {section.init_from} and the model",
                             f"some of {shared}")
    towers = {}
    for m in section.modalities:
        if m in base.config.towers and (m in kept_towers or m not in section.towers):
            towers[m] = base.config.towers[m]  # kept, or started afresh with the base's shape (LiT's text tower)
        else:  # a new tower (binding), or one given new sizes
            towers[m] = tower_config(m, section.variant, base.config.embed_dim, **section.towers.get(m, {}))
    config = ModelConfig(towers=towers, embed_dim=base.config.embed_dim)
    model = OmniBind(config, build_processors(config, section.tokenizer, assets=checkpoint.asset_files(base)))
    kept = {k: v for k, v in base.state_dict().items() if _tower_of(k) in (None, *kept_towers)}
    model.load_state_dict(kept, strict=False)  # the other towers keep their fresh initialisation
    return model


def _tower_of(name: str) -> str | None:
    """"image" for "towers.image.…", None for parameters outside the towers (t', b)."""
    return name.split(".")[1] if name.startswith("towers.") else None


def make_objective(cfg: TrainConfig, info: DistInfo) -> Objective:
    """The objective named by loss.kind over loss.pairs with loss.options, set up for this run's processes."""
    setup = ObjectiveSetup(tuple((a, b) for a, b in cfg.loss.pairs), info.world_size, cfg.loss.chunked,
                           dict(cfg.loss.options))
    return build_objective(cfg.loss.kind, setup)


def build_data(cfg: TrainConfig, model: OmniBind, info: DistInfo, show_progress: bool = False) -> Any:
    """The batch stream of this rank: synthetic classes, the shards decoded once into memory, or the
    streaming shard loader; all are resumable."""
    data = cfg.data
    if data.kind == "synthetic":
        return SyntheticBatches(model.config, data.batch_size, data.synthetic_classes, cfg.seed,
                                data.synthetic_missing, info.rank, info.world_size)
    if data.kind == "cached":
        from omnibind.data.cached import CachedBatches, DecodedSet

        decoded = DecodedSet.decode(data.shards, model.processors, data.num_workers, show_progress,
                                    specs=input_specs(model.config.towers)).select(data.keys, data.skip_keys)
        return CachedBatches(decoded, data.batch_size, cfg.seed, info.rank, info.world_size)
    from omnibind.data.loader import LoaderConfig, make_loader

    if data.batch_size % info.world_size:
        raise ValueError(f"data.batch_size {data.batch_size} must be divisible by the world size {info.world_size}")
    loader_cfg = LoaderConfig(shards=data.shards, batch_size=data.batch_size // info.world_size,
                              num_workers=data.num_workers, shuffle_buffer=data.shuffle_buffer, seed=cfg.seed)
    return make_loader(loader_cfg, model.processors, info.rank, info.world_size,
                       specs=input_specs(model.config.towers))
