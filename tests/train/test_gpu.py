"""GPU checks of the engine (skipped without CUDA): B/16 image–text in bf16 with and without
torch.compile, and a 4,096-pair batch with activation checkpointing; memory and pairs/s are printed."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from omnibind.train.config import load_train_config
from omnibind.train.trainer import Trainer

CONFIG = Path(__file__).parents[2] / "configs" / "b16_synthetic_gpu.yaml"
pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (none present)")]


def run(tmp_path: Path, *overrides: str) -> dict[str, float]:
    torch.cuda.reset_peak_memory_stats()
    cfg = load_train_config(CONFIG, [f"run_dir={tmp_path}", "train.log_every=5", *overrides])
    metrics = Trainer(cfg, show_progress=False).run()
    metrics["peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
    print(f"\n{overrides}: loss {metrics['loss']:.3f}, {metrics['pairs_per_s']:.0f} pairs/s, "
          f"peak {metrics['peak_gib']:.1f} GiB")
    return metrics


@pytest.mark.parametrize("compile_towers", [False, True])
def test_b16_bf16_trains(tmp_path: Path, compile_towers: bool) -> None:
    metrics = run(tmp_path, "data.batch_size=512", "train.grad_checkpointing=false", "train.steps=20",
                  f"train.compile={str(compile_towers).lower()}")
    assert math.isfinite(metrics["loss"])


def test_b16_batch_4096_fits_with_activation_checkpointing(tmp_path: Path) -> None:
    metrics = run(tmp_path, "data.batch_size=4096", "train.grad_checkpointing=true", "train.steps=10")
    assert math.isfinite(metrics["loss"]) and metrics["peak_gib"] < 80
