"""Distributed equivalence on CPU/gloo under torchrun: the chunked (ring) and gathered losses and their
gradients equal the single-process full-batch ones (1e-5), and 2-process DDP / FSDP training ends with
the parameters of the 1-process run on the same global batches, logging the same loss and per-pair losses."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from omnibind.losses import MultiPairLoss
from omnibind.train.metrics import read_metrics

HERE = Path(__file__).parent
TOL = 1e-5
sys.path.insert(0, str(HERE))
from dist_worker import global_inputs  # noqa: E402
from launch import torchrun, train  # noqa: E402


def reference(kind: str) -> dict[str, torch.Tensor]:
    """Loss and gradients of the whole global batch in one process."""
    data = global_inputs()
    x, y = data["x"].clone().requires_grad_(), data["y"].clone().requires_grad_()
    scale, bias = data["scale"].clone().requires_grad_(), data["bias"].clone().requires_grad_()
    loss, _ = MultiPairLoss([("a", "b")], kind)({"a": x, "b": y}, {"a": data["mx"], "b": data["my"]}, scale, bias)
    loss.backward()
    return {"loss": loss.detach(), "x": x.grad, "y": y.grad, "scale": scale.grad, "bias": bias.grad}


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "mode", "nproc"), [("sigmoid", "ring", 2), ("sigmoid", "ring", 4),
                                                    ("sigmoid", "gather", 2), ("softmax", "gather", 2)])
def test_distributed_loss_and_gradients_equal_full_batch(tmp_path: Path, kind: str, mode: str, nproc: int) -> None:
    torchrun(nproc, str(HERE / "dist_worker.py"), kind, mode, str(tmp_path))
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(nproc)]
    ref = reference(kind)
    # What DDP does: average the per-rank losses and the per-rank parameter gradients.
    assert abs(sum(r["loss"] for r in ranks) / nproc - ref["loss"]) < TOL
    for name in ("scale", "bias") if kind == "sigmoid" else ("scale",):  # CLIP's loss has no bias
        assert (sum(r[name] for r in ranks) / nproc - ref[name]).abs().max() < TOL
    # Embedding gradients reach the parameters through DDP's average, hence the 1/nproc.
    for r in ranks:
        rows = slice(*r["rows"])
        for name in ("x", "y"):
            assert (r[name] / nproc - ref[name][rows]).abs().max() < TOL


def run_training(tmp_path: Path, name: str, nproc: int, *overrides: str) -> dict[str, torch.Tensor]:
    config = Path(__file__).parents[2] / "configs" / "tiny_synthetic.yaml"
    # Adam's eps is raised from 1e-8: some gradients are exactly zero in theory (the attention key bias,
    # by softmax's shift invariance) and Adam would blow their float round-off up to ±lr-sized steps,
    # which differ between reduction orders. With eps=1e-3 the runs agree to ~1e-7.
    args = [f"run_dir={tmp_path / name}", "train.steps=4", "train.ckpt_every=4", "train.log_every=1",
            "data.batch_size=8", "optim.warmup_steps=1", "optim.eps=1e-3", *overrides]
    train(nproc, config, *args)
    return load_file(tmp_path / name / "checkpoints" / "step-00000004" / "model.safetensors")


@pytest.mark.slow
@pytest.mark.parametrize(("strategy", "accum"), [("ddp", 1), ("fsdp", 1), ("ddp", 2), ("fsdp", 2)])
def test_two_process_training_equals_one_process(tmp_path: Path, strategy: str, accum: int) -> None:
    """accum=2: exact gradient caching, whose per-chunk backward passes never reach t' and b."""
    single = run_training(tmp_path, "single", 1)
    double = run_training(tmp_path, "double", 2, f"train.strategy={strategy}", f"train.accum_steps={accum}")
    assert single.keys() == double.keys()
    worst = max((single[k] - double[k]).abs().max().item() for k in single)
    assert worst < TOL, worst
    assert (single["logit_scale"] - math.log(10)).abs().item() > 1e-6  # training really moved t'


def logged_losses(run_dir: Path) -> list[dict[str, float]]:
    """The loss and loss/<pair> values of every logged step of a run."""
    return [{k: v for k, v in r.items() if k == "loss" or k.startswith("loss/")} for r in read_metrics(run_dir)]


@pytest.mark.slow
def test_two_processes_log_the_per_pair_losses_of_one(tmp_path: Path) -> None:
    """Every logged loss part is averaged over ranks: under the ring a rank holds world × its share only."""
    run_training(tmp_path, "single", 1)
    run_training(tmp_path, "double", 2)
    single, double = logged_losses(tmp_path / "single"), logged_losses(tmp_path / "double")
    assert len(single) == len(double) == 4
    for one, two in zip(single, double, strict=True):
        assert one.keys() == two.keys() and {"loss/image-text", "loss/audio-text", "loss/image-audio"} < one.keys()
        assert all(abs(one[k] - two[k]) < TOL for k in one), (one, two)
