"""Launching `omnibind train` the way users do, for the multi-process tests: in a subprocess, alone or under
torchrun (CPU/gloo, one thread per process)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def torchrun(nproc: int, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> None:
    """`torchrun --standalone --nproc_per_node=nproc ARGS`, asserting that every worker exits cleanly."""
    env = {**(env or os.environ), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", *args]
    result = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def train(nproc: int, config: Path, *overrides: str, env: dict[str, str] | None = None) -> None:
    """`omnibind train CONFIG OVERRIDES` in nproc processes (torchrun for more than one)."""
    args = ["-m", "omnibind.cli", "train", str(config), *overrides]
    if nproc > 1:
        torchrun(nproc, *args, env=env)
        return
    result = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=240,
                            env={**(env or os.environ), "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
