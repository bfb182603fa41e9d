"""Smoke runs of the GPU benchmarks at tiny settings (they fall back to the CPU here): every row is
measured and positive, FLOPs are counted, and omnibind's embeddings agree with transformers'."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
import torch
from rich.console import Console

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(autouse=True)
def benchmarks_on_path(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)
    for name in ("gpu_train", "gpu_infer", "gpu_common"):
        sys.modules.pop(name, None)


def quiet() -> Console:
    """A console that prints nowhere (the table is not what these tests check)."""
    return Console(file=io.StringIO())


@pytest.mark.slow
def test_gpu_train_smoke() -> None:
    import gpu_train

    result = gpu_train.main(["--depth", "1", "--batch", "2", "--steps", "1", "--warmup", "0", "--precision", "fp32",
                             "--modes", "eager", "--libs", "omnibind"], quiet())
    (row,) = result["rows"]
    assert row["lib"] == "omnibind" and row["pairs_per_s"] > 0
    assert row["flops_per_pair"] > 1e9 and row["mfu"] > 0  # one B/16-wide block per tower: ~13 GFLOP per pair


@pytest.mark.slow
def test_gpu_infer_smoke() -> None:
    import gpu_infer

    result = gpu_infer.main(["--depth", "1", "--batch", "2", "--iters", "1", "--warmup", "0"], quiet())
    assert max(result["gap"].values()) < 1e-4
    assert {(r["lib"], r["task"]) for r in result["rows"]} >= {("omnibind", "image"), ("transformers", "text")}
    assert all(r["items_per_s"] > 0 for r in result["rows"])
