"""A modality defined in tests/ alone (toy depth maps) trains like the built-in ones: a text–depth model on
synthetic batches learns in one process, and two processes under torchrun (which import the modality
through OMNIBIND_MODALITIES) end with the parameters and log the losses of the one-process run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from launch import train
from safetensors.torch import load_file

import toy_modality
from helpers import TINY_TOWER
from omnibind.train.config import load_train_config
from omnibind.train.metrics import read_metrics
from omnibind.train.trainer import Trainer

TOL = 1e-5
STEPS = 20


def write_config(folder: Path) -> Path:
    """A text–depth config (JSON is YAML) scored on the depth–text pair."""
    towers = {"text": dict(TINY_TOWER, vocab_size=64, max_len=16),
              toy_modality.NAME: dict(TINY_TOWER, size=16, patch_size=4)}
    config = {
        "seed": 0,
        "model": {"variant": "Ti/16", "modalities": ["text", toy_modality.NAME], "embed_dim": 32, "towers": towers},
        "data": {"kind": "synthetic", "batch_size": 8, "synthetic_classes": 4},
        "loss": {"kind": "sigmoid", "pairs": [[toy_modality.NAME, "text"]]},
        # Adam's eps is raised as in test_distributed.py, so that float round-off stays round-off.
        "optim": {"lr": 3e-3, "warmup_steps": 2, "eps": 1e-3},
        "train": {"steps": STEPS, "log_every": 1, "ckpt_every": STEPS},
    }
    path = folder / "depth_text.yaml"
    path.write_text(json.dumps(config))
    return path


@pytest.mark.slow
def test_a_toy_modality_trains_alike_in_one_and_two_processes(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    Trainer(load_train_config(config, [f"run_dir={tmp_path / 'single'}"]), show_progress=False).run()
    train(2, config, f"run_dir={tmp_path / 'double'}", env=toy_modality.plugin_env())
    single, double = read_metrics(tmp_path / "single"), read_metrics(tmp_path / "double")
    assert len(single) == len(double) == STEPS
    assert single[-1]["loss"] < 0.8 * single[0]["loss"]
    for one, two in zip(single, double, strict=True):
        for key in ("loss", "loss/depth-text"):
            assert abs(one[key] - two[key]) < TOL, (one["step"], key, one[key], two[key])
    weights = [load_file(tmp_path / run / "checkpoints" / f"step-{STEPS:08d}" / "model.safetensors")
               for run in ("single", "double")]
    assert weights[0].keys() == weights[1].keys() and any(k.startswith("towers.depth.") for k in weights[0])
    worst = max((weights[0][k] - weights[1][k]).abs().max().item() for k in weights[0])
    assert worst < TOL, worst


def test_a_toy_modality_trains_from_cached_shards_with_eval(tmp_path: Path, spiece_model: Path) -> None:
    """Real depth files packed into shards: cached data, the depth-text pair loss, and an end-of-run
    evaluation that reports depth retrieval and zero-shot."""
    from omnibind.data.pack import pack
    from omnibind.preprocess.text import Tokenizer
    from toy_data import write_depth_manifest

    manifest, _ = write_depth_manifest(tmp_path / "files", n=24)
    shards = pack(str(manifest), tmp_path / "shards", shard_size=12, show_progress=False).pattern
    config = json.loads(write_config(tmp_path).read_text())
    config["model"]["tokenizer"] = str(spiece_model)
    config["model"]["towers"]["text"]["vocab_size"] = Tokenizer(spiece_model).vocab_size
    config["data"] = {"kind": "cached", "shards": shards, "batch_size": 8, "num_workers": 0}
    config["eval"] = {"splits": {"train": shards}}
    config["run_dir"] = str(tmp_path / "run")
    path = tmp_path / "cached.yaml"
    path.write_text(json.dumps(config))
    final = Trainer(load_train_config(path), show_progress=False).run()
    records = read_metrics(tmp_path / "run")
    losses = [r["loss"] for r in records if "loss" in r]
    assert len(losses) == STEPS and losses[-1] < losses[0] and final["loss"] == losses[-1]
    evaluation = json.loads((tmp_path / "run" / "eval" / "train.json").read_text())["metrics"]
    assert {"retrieval/depth->text/R@1", "retrieval/text->depth/R@1", "depth_zeroshot/top1"} <= set(evaluation)
