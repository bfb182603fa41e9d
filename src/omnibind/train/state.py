"""Training checkpoints: one folder per step holding the model (a loadable omnibind checkpoint), the
optimiser and scheduler, RNG states and the data position. Written into `step-N.tmp` and renamed into
place, so a folder named `step-N` is always complete; a crash mid-write leaves only a `.tmp` folder."""

from __future__ import annotations

import os
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)

from omnibind import checkpoint
from omnibind.errors import CheckpointError
from omnibind.fsutil import fsync_path
from omnibind.train import distributed

STEP_DIR = re.compile(r"^step-(\d{8})$")
TRAIN_STATE = "train_state.pt"
FULL = StateDictOptions(full_state_dict=True, cpu_offload=True)
# A trainable parameter that no step has reached yet (a pooling head under captioning alone) has no optimiser
# state to save; resuming restores it as such (the model's weights themselves still load strictly).
OPTIMIZER_LOAD = StateDictOptions(full_state_dict=True, cpu_offload=True, strict=False)


def step_dir(root: Path, step: int) -> Path:
    """The folder of the checkpoint after `step` optimiser steps."""
    return root / f"step-{step:08d}"


def complete_checkpoints(root: Path) -> list[tuple[int, Path]]:
    """(step, folder) of every complete checkpoint under root, oldest first; .tmp folders never count."""
    if not root.is_dir():
        return []
    found = []
    for entry in root.iterdir():
        match = STEP_DIR.match(entry.name)
        if match and (entry / TRAIN_STATE).is_file() and (entry / checkpoint.WEIGHTS_FILE).is_file():
            found.append((int(match.group(1)), entry))
    return sorted(found)


def latest(root: Path) -> Path | None:
    """The newest complete checkpoint folder, or None."""
    found = complete_checkpoints(root)
    return found[-1][1] if found else None


def rng_state() -> dict[str, Any]:
    """Python, NumPy and torch RNG states in a form torch.load(weights_only=True) accepts."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": pos,
                  "has_gauss": has_gauss, "cached": cached},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what `rng_state` captured."""
    random.setstate(_as_tuples(state["python"]))
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def _as_tuples(value: Any) -> Any:
    return tuple(_as_tuples(v) for v in value) if isinstance(value, list | tuple) else value


def save(root: Path, step: int, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
         data_state: dict[str, Any], info: distributed.DistInfo, keep_last: int,
         sections: dict[str, Any] | None = None) -> Path:
    """Write the checkpoint of `step` (every rank calls this; rank 0 writes the shared parts); `sections` are
    the objective's extra config sections (a captioning run's "decoder")."""
    final, tmp = step_dir(root, step), root / f"step-{step:08d}.tmp"
    weights = get_model_state_dict(model, options=FULL)
    optim = get_optimizer_state_dict(model, optimizer, options=FULL)
    if info.is_main:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    distributed.barrier()
    own = {"rng": rng_state(), "data": data_state}
    torch.save(own, tmp / f"rank{info.rank}.pt")
    fsync_path(tmp / f"rank{info.rank}.pt")
    if info.is_main:
        bare = distributed.unwrap(model)
        checkpoint.save_state(tmp, bare.config, weights, checkpoint.asset_files(bare), sections)
        shared = {"step": step, "optimizer": optim, "scheduler": scheduler.state_dict(),
                  "world_size": info.world_size}
        torch.save(shared, tmp / TRAIN_STATE)
        fsync_path(tmp / TRAIN_STATE)
    distributed.barrier()
    if info.is_main:
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        fsync_path(root)
        for _, old in complete_checkpoints(root)[:-keep_last]:
            shutil.rmtree(old, ignore_errors=True)
    distributed.barrier()
    return final


def load(folder: Path, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
         info: distributed.DistInfo) -> tuple[int, dict[str, Any]]:
    """Restore model, optimiser, scheduler and this rank's RNG; returns (step, data position)."""
    shared = _load(folder / TRAIN_STATE)
    if shared["world_size"] != info.world_size:
        raise CheckpointError(
            f"{folder}: written by {shared['world_size']} processes (expected {info.world_size} to resume exactly)"
        )
    own = _load(folder / f"rank{info.rank}.pt")
    set_model_state_dict(model, checkpoint.read_weights(folder), options=FULL)
    set_optimizer_state_dict(model, optimizer, shared["optimizer"], options=OPTIMIZER_LOAD)
    scheduler.load_state_dict(shared["scheduler"])
    set_rng_state(own["rng"])
    return int(shared["step"]), own["data"]


def _load(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise CheckpointError(f"{path}: missing (expected a training-state file of this checkpoint)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError) as err:
        raise CheckpointError(f"{path}: cannot read training state ({err})") from err
