"""Training a captioner with the project's engine (synthetic batches, tiny towers): the caption loss falls; the
run's checkpoint loads as a Generator that generates, saves and reloads identically; a resumed run ends where an
uninterrupted one does (decoder and its optimiser state included); towers start from a contrastive checkpoint
(locked or not) and the decoder from a captioning run; two processes train as one (slow)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import omnibind
from omnibind.errors import InputError
from omnibind.generation import Decoding, Generator
from omnibind.train import state
from omnibind.train.config import TrainConfig, load_train_config
from omnibind.train.metrics import read_metrics
from omnibind.train.trainer import Trainer

ROOT = Path(__file__).parents[2]
CONFIG = ROOT / "configs" / "tiny_synthetic.yaml"
OPTIONS = ("loss.options={decoder: {width: 32, depth: 1, heads: 2, head_dim: 16, mlp_dim: 64}, "
           "tasks: [{prompt: caption en, media: [image]}, {prompt: describe the sound, media: [audio]}]}")
sys.path.insert(0, str(ROOT / "tests" / "train"))
from launch import train as launch_train  # noqa: E402


def config(run_dir: Path, spiece: Path | None, *overrides: str) -> TrainConfig:
    tokenizer = [f"model.tokenizer={spiece}"] if spiece is not None else []
    return load_train_config(CONFIG, [f"run_dir={run_dir}", "loss.kind=captioning", OPTIONS, "data.batch_size=16",
                                      "optim.warmup_steps=1", "optim.min_lr_ratio=1.0", "train.log_every=1",
                                      *tokenizer, *overrides])


def weights(run_dir: Path, step: int) -> dict[str, torch.Tensor]:
    return load_file(state.step_dir(run_dir / "checkpoints", step) / "model.safetensors")


def test_loss_falls_and_the_run_loads_saves_and_generates_as_a_generator(tmp_path: Path, spiece_model: Path) -> None:
    trainer = Trainer(config(tmp_path / "run", spiece_model, "train.steps=12", "train.ckpt_every=12",
                             "optim.lr=1e-2"), show_progress=False)
    trainer.run()
    losses = [r["loss/caption"] for r in read_metrics(tmp_path / "run")]
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3 - 0.3, losses
    model = omnibind.load(trainer.final_model_dir())
    assert isinstance(model, Generator) and model.modalities == ("image", "audio")
    image = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    texts = model.generate(["caption en", "describe the sound"], image=image, max_new_tokens=6)
    assert len(texts) == 2 and all(isinstance(t, str) for t in texts)
    prompts = [model.tokenizer.prompt_ids("caption en")] * 2
    settings = Decoding(max_new_tokens=6, beams=2)
    before = model.generate_ids(prompts, {"image": list(image)}, settings)
    again = omnibind.load(omnibind.save(model, tmp_path / "saved"))
    assert isinstance(again, Generator)
    assert again.generate_ids(prompts, {"image": list(image)}, settings) == before
    assert again.generate(["caption en"], image=image[0], max_new_tokens=6) == texts[:1]
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in model.state_dict().items())


def test_resume_ends_where_an_uninterrupted_run_does(tmp_path: Path, spiece_model: Path) -> None:
    common = ("train.steps=4", "train.ckpt_every=2", "train.keep_last=3", "data.batch_size=8")
    Trainer(config(tmp_path / "straight", spiece_model, *common), show_progress=False).run()
    shutil.copytree(tmp_path / "straight", tmp_path / "resumed")
    shutil.rmtree(state.step_dir(tmp_path / "resumed" / "checkpoints", 4))
    resumed = Trainer(config(tmp_path / "resumed", spiece_model, *common), resume=True, show_progress=False)
    assert resumed.step == 2
    resumed.run()
    straight, again = weights(tmp_path / "straight", 4), weights(tmp_path / "resumed", 4)
    assert any(k.startswith("decoder.") for k in straight) and straight.keys() == again.keys()
    assert all(torch.equal(straight[k], again[k]) for k in straight)


def test_towers_from_a_contrastive_checkpoint_locked_and_a_decoder_from_a_run(tmp_path: Path,
                                                                             tiny_checkpoint: Path) -> None:
    start = omnibind.load(tiny_checkpoint).state_dict()
    towers = ("model.init_from=" + str(tiny_checkpoint), "model.towers={}", "model.embed_dim=32")
    first = Trainer(config(tmp_path / "lit", None, *towers, "train.steps=2", "train.ckpt_every=2",
                           "lock=[towers.image.*]"), show_progress=False)
    first.run()
    trained = weights(tmp_path / "lit", 2)
    assert all(torch.equal(trained[k], v) for k, v in start.items() if k.startswith("towers.image."))  # locked
    assert not all(torch.equal(trained[k], v) for k, v in start.items() if k.startswith("towers.audio."))
    second = Trainer(config(tmp_path / "next", None, *towers, "train.steps=1",
                            f"loss.options.init_decoder={first.final_model_dir()}"), show_progress=False)
    assert all(torch.equal(second.model.state_dict()[k], v) for k, v in trained.items()
               if k.startswith(("decoder.", "project.")))


def test_fsdp_is_refused_for_an_objective_that_owns_modules() -> None:
    from omnibind.train.distributed import DistInfo, wrap

    model = omnibind.create("Ti/16", ("image",), image={"width": 32, "depth": 1, "heads": 2, "mlp_dim": 64})
    model.add_module("decoder", torch.nn.Linear(2, 2))
    with pytest.raises(InputError, match=r"train\.strategy"):
        wrap(model, "fsdp", DistInfo(0, 2, 0, torch.device("cpu")))


@pytest.mark.slow
@pytest.mark.parametrize("beside", [[], ["loss.options.contrastive=sigmoid"]], ids=["alone", "with-sigmoid"])
def test_two_processes_train_as_one(tmp_path: Path, spiece_model: Path, beside: list[str]) -> None:
    """DDP over 2 gloo processes vs one process on the same global batches: same parameters, same logged loss."""
    args = ["loss.kind=captioning", OPTIONS, f"model.tokenizer={spiece_model}", "train.steps=3", "train.ckpt_every=3",
            "train.log_every=1", "data.batch_size=8", "optim.warmup_steps=1", "optim.eps=1e-3",
            "data.synthetic_missing=0.3", *beside]
    launch_train(1, CONFIG, f"run_dir={tmp_path / 'one'}", *args)
    launch_train(2, CONFIG, f"run_dir={tmp_path / 'two'}", *args)
    one, two = weights(tmp_path / "one", 3), weights(tmp_path / "two", 3)
    assert one.keys() == two.keys() and any(k.startswith("decoder.") for k in one)
    worst = max((one[k] - two[k]).abs().max().item() for k in one)
    assert worst < 1e-5, worst
    logged = [[r["loss/caption"] for r in read_metrics(tmp_path / name)] for name in ("one", "two")]
    assert logged[0] == pytest.approx(logged[1], abs=1e-5)


def test_bf16_towers_feed_the_decoder_and_accumulation_is_refused(tmp_path: Path, spiece_model: Path) -> None:
    trainer = Trainer(config(tmp_path / "bf16", spiece_model, "train.steps=1", "train.precision=bf16",
                             "data.batch_size=4"), show_progress=False)
    assert torch.isfinite(torch.tensor(trainer.run()["loss/caption"]))
    with pytest.raises(InputError, match=r"train\.accum_steps"):  # the decoder reads token sequences
        Trainer(config(tmp_path / "accum", spiece_model, "train.accum_steps=2"), show_progress=False)
