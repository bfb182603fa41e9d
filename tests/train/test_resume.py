"""Exact resume: a run killed with SIGKILL and resumed ends with the same parameters, bit for bit, as an
uninterrupted run; a checkpoint cut off mid-write is never taken as the latest."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from omnibind.train import state

CONFIG = Path(__file__).parents[2] / "configs" / "tiny_synthetic.yaml"
STEPS = 40
# A slightly larger model than the config's so each step takes long enough to kill the run mid-way.
COMMON = [f"train.steps={STEPS}", "train.ckpt_every=5", "train.keep_last=3", "train.log_every=5",
          "model.towers.image.image_size=64", "model.towers.image.depth=3", "data.batch_size=32"]


def command(run_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "omnibind.cli", "train", str(CONFIG), f"run_dir={run_dir}", *COMMON, *extra]


def env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1"}


def final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(state.step_dir(run_dir / "checkpoints", STEPS) / "model.safetensors")


@pytest.mark.slow
def test_sigkill_then_resume_is_bit_identical(tmp_path: Path) -> None:
    subprocess.run(command(tmp_path / "straight"), check=True, env=env(), capture_output=True, timeout=300)

    killed = tmp_path / "killed"
    process = subprocess.Popen(command(killed), env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while max((step for step, _ in state.complete_checkpoints(killed / "checkpoints")), default=0) < 10:
        assert process.poll() is None, process.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    stopped_at = state.complete_checkpoints(killed / "checkpoints")[-1][0]
    assert stopped_at < STEPS, "the run finished before it could be killed"

    subprocess.run(command(killed, "--resume"), check=True, env=env(), capture_output=True, timeout=300)
    log = (killed / "train.log").read_text()
    assert f"resumed from {state.step_dir(killed / 'checkpoints', stopped_at)}" in log
    straight, resumed = final_weights(tmp_path / "straight"), final_weights(killed)
    assert straight.keys() == resumed.keys()
    for key in straight:
        assert torch.equal(straight[key], resumed[key]), key


def test_incomplete_checkpoints_are_never_latest(tmp_path: Path) -> None:
    root = tmp_path / "checkpoints"
    good = state.step_dir(root, 5)
    good.mkdir(parents=True)
    (good / "model.safetensors").write_bytes(b"x")
    (good / state.TRAIN_STATE).write_bytes(b"x")
    cut_off = root / "step-00000010.tmp"  # a write interrupted before its rename
    cut_off.mkdir()
    (cut_off / "model.safetensors").write_bytes(b"partial")
    no_state = state.step_dir(root, 9)  # a folder that somehow lacks its training state
    no_state.mkdir()
    (no_state / "model.safetensors").write_bytes(b"x")
    assert state.latest(root) == good
    assert [step for step, _ in state.complete_checkpoints(root)] == [5]
