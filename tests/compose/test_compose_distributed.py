"""Training a composed model's connector with `omnibind train` in 2 processes (torchrun, gloo on CPU) ends with
the weights of the 1-process run on the same global batches, within 1e-5, and logs the same losses: the text
bridge alone, the bridge with SigLIP's loss (text_bridge_sigmoid) and SigLIP's loss alone (paired binding),
with some examples lacking their text (so that the ranks hold different numbers of captions). Slow: two
`omnibind train` runs (1 and 2 processes) per case."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from compose_fixtures import AUDIO, TEXT, specs
from safetensors.torch import load_file

from omnibind.compose import compose, save_composed
from omnibind.runlog import read_metrics

pytestmark = pytest.mark.slow
ROOT = Path(__file__).parents[2]
sys.path.insert(0, str(ROOT / "tests" / "train"))
from launch import train  # noqa: E402

TOL = 1e-5


def run(nproc: int, config: str, composed: Path, run_dir: Path) -> dict[str, torch.Tensor]:
    # Adam's eps is raised from 1e-8, as in tests/train/test_distributed.py: a gradient that is zero in theory
    # would otherwise turn float round-off, which differs between reduction orders, into lr-sized steps.
    train(nproc, ROOT / "configs" / config, f"run_dir={run_dir}", f"model.init_from={composed}", "data.kind=synthetic",
          "data.batch_size=8", "data.synthetic_classes=4", "data.synthetic_missing=0.3", "eval.splits={}",
          "train.steps=3", "train.ckpt_every=3", "train.log_every=1", "optim.warmup_steps=1", "optim.lr=1.0e-2",
          "optim.eps=1e-3")
    return load_file(run_dir / "checkpoints" / "step-00000003" / "model.safetensors")


@pytest.mark.parametrize("config", ["compose_text_bridge.yaml", "compose_both.yaml", "compose_bind.yaml"])
def test_two_processes_train_the_connector_as_one(sources: dict[str, Path], tmp_path: Path, config: str) -> None:
    composed = save_composed(compose(specs(sources)), tmp_path / "composed")
    start = load_file(composed / "model.safetensors")
    one, two = run(1, config, composed, tmp_path / "one"), run(2, config, composed, tmp_path / "two")
    assert one.keys() == two.keys() == start.keys()
    connector = [k for k in one if k.startswith(f"towers.{AUDIO}.connector.")]
    assert connector and all((one[k] - start[k]).abs().max() > 1e-3 for k in connector)  # it really trained
    worst = max((one[k] - two[k]).abs().max().item() for k in one)
    assert worst < TOL, worst
    logged = [[{k: v for k, v in r.items() if k.startswith("loss")} for r in read_metrics(tmp_path / name)]
              for name in ("one", "two")]
    assert len(logged[0]) == len(logged[1]) == 3
    for a, b in zip(*logged, strict=True):
        assert a.keys() == b.keys() and (f"loss/{AUDIO}~{TEXT}" in a) == (config != "compose_bind.yaml")
        assert all(abs(a[k] - b[k]) < TOL for k in a), (a, b)
