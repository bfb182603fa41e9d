"""AdamW with weight decay only on matrices, warmup + cosine schedule, and locking by name pattern."""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Sequence

import torch
from torch import nn

from omnibind.errors import InputError
from omnibind.train.config import OptimSection


def lock(model: nn.Module, patterns: Sequence[str]) -> list[str]:
    """Freeze parameters whose names match any fnmatch pattern ("towers.image.*"); returns their names."""
    frozen = []
    for pattern in patterns:
        matched = [name for name, _ in model.named_parameters() if fnmatch.fnmatchcase(name, pattern)]
        if not matched:
            raise InputError(f"lock: {pattern}", "matches no parameter", "a pattern such as 'towers.image.*'")
        frozen += matched
    names = set(frozen)
    for name, param in model.named_parameters():
        if name in names:
            param.requires_grad_(False)
    return sorted(names)


def decays(module: nn.Module, name: str) -> bool:
    """Weight decay applies to linear and convolution weights only: not to norms, biases, embeddings,
    position tables, probes, t' or b (as big_vision decays only kernels)."""
    return isinstance(module, nn.Linear | nn.Conv2d) and name == "weight"


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two AdamW groups (decayed / not) of the trainable parameters; frozen ones get no state at all."""
    decayed, plain = [], []
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            if param.requires_grad:
                (decayed if decays(module, name) else plain).append(param)
    return [{"params": decayed, "weight_decay": weight_decay}, {"params": plain, "weight_decay": 0.0}]


def make_optimizer(model: nn.Module, cfg: OptimSection, device: torch.device) -> torch.optim.AdamW:
    """AdamW over the trainable parameters; the fused kernel on CUDA."""
    groups = [g for g in param_groups(model, cfg.weight_decay) if g["params"]]
    if not groups:
        raise InputError("lock", "every parameter is locked", "at least one trainable parameter")
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps, fused=device.type == "cuda")


def lr_factor(step: int, total: int, warmup: int, min_ratio: float) -> float:
    """Linear warmup from 0 over `warmup` steps, then cosine decay to `min_ratio` at `total`."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def make_schedule(optimizer: torch.optim.Optimizer, cfg: OptimSection, total_steps: int):
    """A LambdaLR following `lr_factor`."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, total_steps, cfg.warmup_steps, cfg.min_lr_ratio)
    )
