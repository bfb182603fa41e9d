"""Build what a training config names: the model (fresh, or grown from a checkpoint) and the data."""

from __future__ import annotations

from typing import Any

import omnibind
from omnibind.config import ModelConfig, tower_config
from omnibind.models.model import OmniBind
from omnibind.processors import build_processors
from omnibind.train.config import TrainConfig
from omnibind.train.distributed import DistInfo
from omnibind.train.synthetic import SyntheticBatches


def build_model(cfg: TrainConfig) -> OmniBind:
    """A fresh model of the configured sizes, or `init_from`'s model plus any new towers (binding)."""
    section = cfg.model
    if section.init_from is None:
        return omnibind.create(section.variant, tuple(section.modalities), section.tokenizer, section.embed_dim,
                               **section.towers)
    base = omnibind.load(section.init_from)
    towers = {m: base.config.towers[m] for m in section.modalities if m in base.config.towers}
    for m in section.modalities:
        if m not in towers:
            towers[m] = tower_config(m, section.variant, base.config.embed_dim, **section.towers.get(m, {}))
    config = ModelConfig(towers=towers, embed_dim=base.config.embed_dim)
    tokenizer = section.tokenizer or (base.processors["text"].model_file if "text" in base.processors else None)
    model = OmniBind(config, build_processors(config, tokenizer))
    kept = {k: v for k, v in base.state_dict().items() if _tower_of(k) in (None, *towers)}
    model.load_state_dict(kept, strict=False)  # only the new towers keep their fresh initialisation
    return model


def _tower_of(name: str) -> str | None:
    """"image" for "towers.image.…", None for parameters outside the towers (t', b)."""
    return name.split(".")[1] if name.startswith("towers.") else None


def build_data(cfg: TrainConfig, model: OmniBind, info: DistInfo) -> Any:
    """The batch stream of this rank: synthetic classes, or the shard loader; both are resumable."""
    data = cfg.data
    if data.kind == "synthetic":
        return SyntheticBatches(model.config, data.batch_size, data.synthetic_classes, cfg.seed,
                                data.synthetic_missing, info.rank, info.world_size)
    from omnibind.data.loader import LoaderConfig, make_loader

    if data.batch_size % info.world_size:
        raise ValueError(f"data.batch_size {data.batch_size} must be divisible by the world size {info.world_size}")
    loader_cfg = LoaderConfig(shards=data.shards, batch_size=data.batch_size // info.world_size,
                              num_workers=data.num_workers, shuffle_buffer=data.shuffle_buffer, seed=cfg.seed)
    return make_loader(loader_cfg, model.processors, info.rank, info.world_size)
