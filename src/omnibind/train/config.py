"""The training config: what model, data, loss, optimiser and loop to run. YAML + key=value overrides."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import omnibind.modalities as registry
from omnibind.errors import InputError
from omnibind.objectives import ObjectiveSetup, build_objective, get_objective
from omnibind.yamlconfig import apply_overrides, from_dict, load_yaml


@dataclass
class ModelSection:
    """The model to train: a named size per tower, or a checkpoint to start from (LiT / binding).
    init_towers names the towers taken from init_from (None: all it has; the others start fresh, as LiT's
    text tower). logit_scale_init / logit_bias_init set t' and b of a fresh model (None: log 10 and -10)."""

    variant: str = "B/16"
    modalities: list[str] = field(default_factory=lambda: [registry.IMAGE.name, registry.TEXT.name])
    embed_dim: int | None = None
    towers: dict[str, dict[str, Any]] = field(default_factory=dict)
    init_from: str | None = None
    init_towers: list[str] | None = None
    tokenizer: str | None = None
    logit_scale_init: float | None = None
    logit_bias_init: float | None = None


@dataclass
class DataSection:
    """Where batches come from: `synthetic` (learnable random classes), `shards` (webdataset/manifest,
    streamed and decoded every epoch) or `cached` (the same shards decoded once into memory). With `cached`,
    `keys` / `skip_keys` (fnmatch patterns on the example keys) keep a part of the set."""

    kind: str = "synthetic"
    shards: str | list[str] | None = None
    batch_size: int = 32
    num_workers: int = 2
    shuffle_buffer: int = 1000
    synthetic_classes: int = 16
    synthetic_missing: float = 0.0
    keys: list[str] = field(default_factory=list)
    skip_keys: list[str] = field(default_factory=list)


@dataclass
class LossSection:
    """Which registered objective (kind: sigmoid, softmax, captioning, or a plugin's) over which modality pairs;
    `chunked` selects the sigmoid loss's ring form across ranks; `options` are the objective's own settings
    (captioning: tasks, decoder shape, weights, a contrastive objective beside it)."""

    kind: str = "sigmoid"
    pairs: list[list[str]] = field(default_factory=lambda: [[registry.IMAGE.name, registry.TEXT.name]])
    chunked: bool = True
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class OptimSection:
    """AdamW with linear warmup then cosine decay to min_lr_ratio × lr; global-norm gradient clipping."""

    lr: float = 1e-3
    weight_decay: float = 1e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.95])
    eps: float = 1e-8
    warmup_steps: int = 100
    min_lr_ratio: float = 0.0
    grad_clip: float | None = 1.0


@dataclass
class LoopSection:
    """The loop: steps, accumulation, precision, speed options, logging and checkpoint cadence."""

    steps: int = 1000
    accum_steps: int = 1
    precision: str = "fp32"
    compile: bool = False
    grad_checkpointing: bool = False
    strategy: str = "ddp"
    log_every: int = 10
    ckpt_every: int = 500
    keep_last: int = 3


@dataclass
class EvalSection:
    """Evaluation during training: named splits (shard specs), every `every` steps (0: at the end only)."""

    splits: dict[str, str | list[str]] = field(default_factory=dict)
    every: int = 0
    label_field: str = "label"
    limit: int | None = None
    templates: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class TrainConfig:
    """A whole training run; `lock` lists parameter-name patterns (fnmatch) to freeze, e.g. towers.image.*"""

    run_dir: str = "runs/default"
    seed: int = 0
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    loss: LossSection = field(default_factory=LossSection)
    optim: OptimSection = field(default_factory=OptimSection)
    train: LoopSection = field(default_factory=LoopSection)
    eval: EvalSection = field(default_factory=EvalSection)
    lock: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        checks = [
            (self.data.kind in ("synthetic", "shards", "cached"), "data.kind", "'synthetic', 'shards' or 'cached'"),
            (self.data.kind == "synthetic" or bool(self.data.shards), "data.shards",
             "shards when data.kind is shards or cached"),
            (self.data.kind == "cached" or not (self.data.keys or self.data.skip_keys), "data.keys",
             "data.keys and data.skip_keys only with data.kind: cached"),
            (self.train.precision in ("fp32", "bf16"), "train.precision", "'fp32' or 'bf16'"),
            (self.train.strategy in ("ddp", "fsdp"), "train.strategy", "'ddp' or 'fsdp'"),
            (self.train.steps > 0 and self.train.accum_steps > 0, "train.steps", "positive steps and accum_steps"),
            (self.data.batch_size % self.train.accum_steps == 0, "data.batch_size", "a multiple of accum_steps"),
        ]
        for ok, key, expected in checks:
            if not ok:
                raise InputError(key, "invalid value", expected)
        get_objective(self.loss.kind)  # an error listing the registered objectives
        for pair in self.loss.pairs:
            if len(pair) != 2 or any(m not in self.model.modalities for m in pair):
                raise InputError("loss.pairs", f"{pair} is not a pair of model.modalities", "e.g. [image, text]")
        pairs = tuple((a, b) for a, b in self.loss.pairs)  # loss.options are checked when the config is read
        build_objective(self.loss.kind, ObjectiveSetup(pairs, 1, self.loss.chunked, dict(self.loss.options)))


def load_train_config(path: str | Path | None, overrides: list[str] | None = None) -> TrainConfig:
    """A TrainConfig from a YAML file (or defaults when path is None) with key=value overrides."""
    data = load_yaml(path) if path is not None else {}
    return from_dict(TrainConfig, apply_overrides(data, overrides or []), "config")
