"""The trainer in one process: the loss falls on learnable synthetic batches, the run folder holds what
it should, locked towers stay bit-identical without optimiser state, gradient caching is exact, and a
pretrained model can be extended with a new tower (ImageBind-style binding)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

import omnibind
from omnibind.train.config import load_train_config
from omnibind.train.metrics import read_metrics
from omnibind.train.trainer import Trainer

CONFIG = Path(__file__).parents[2] / "configs" / "tiny_synthetic.yaml"


def config(tmp_path: Path, *overrides: str):
    return load_train_config(CONFIG, [f"run_dir={tmp_path / 'run'}", *overrides])


def saved_image_text_model(folder: Path, spiece_model: Path) -> omnibind.OmniBind:
    """A tiny image–text model saved in `folder`: the pretrained start of binding and LiT."""
    from helpers import TINY_TOWER

    torch.manual_seed(0)
    base = omnibind.create("Ti/16", ("image", "text"), spiece_model, 32, image=dict(TINY_TOWER, image_size=32,
                           patch_size=8), text=dict(TINY_TOWER, max_len=16, vocab_size=64))
    omnibind.save(base, folder)
    return base


@pytest.mark.slow
def test_tiny_trimodal_model_learns(tmp_path: Path) -> None:
    cfg = config(tmp_path, "train.steps=80", "train.log_every=10", "train.ckpt_every=40")
    Trainer(cfg, show_progress=False).run()
    records = read_metrics(tmp_path / "run")
    assert [r["step"] for r in records] == list(range(10, 81, 10))
    assert records[-1]["loss"] < 0.75 * records[0]["loss"]
    for key in ("loss/image-text", "loss/audio-text", "loss/image-audio", "lr", "t", "b", "pairs_per_s", "grad_norm"):
        assert key in records[-1]
    run = tmp_path / "run"
    assert (run / "config.yaml").is_file() and (run / "train.log").is_file() and any((run / "tb").iterdir())
    model = omnibind.load(run / "checkpoints" / "step-00000080")
    assert model.modalities == ("image", "text", "audio")


def test_learning_rate_schedule_and_decay_groups(tmp_path: Path) -> None:
    cfg = config(tmp_path, "train.steps=20", "optim.warmup_steps=5", "optim.lr=0.01", "optim.min_lr_ratio=0.1")
    trainer = Trainer(cfg, show_progress=False)
    lrs = []
    for _ in range(20):
        lrs.append(trainer.scheduler.get_last_lr()[0])
        trainer.optimizer.step()  # no gradients yet: a no-op that keeps the scheduler's order check happy
        trainer.scheduler.step()
    assert lrs[:5] == pytest.approx([0.002, 0.004, 0.006, 0.008, 0.01])
    cosine_end = 0.001 + 0.009 * 0.5 * (1 + math.cos(math.pi * 14 / 15))
    assert lrs[5] == pytest.approx(0.01) and lrs[-1] == pytest.approx(cosine_end)
    decayed, plain = trainer.optimizer.param_groups
    names = {id(p): n for n, p in trainer.model.named_parameters()}
    assert all(names[id(p)].endswith("weight") for p in decayed["params"]) and decayed["weight_decay"] > 0
    plain_names = {names[id(p)] for p in plain["params"]}
    assert {"logit_scale", "logit_bias", "towers.text.token_embed.weight", "towers.image.patch_embed.pos_embed",
            "towers.image.encoder.norm.weight", "towers.image.pool.probe"} <= plain_names


def test_locked_tower_is_bit_identical_and_has_no_optimizer_state(tmp_path: Path) -> None:
    cfg = config(tmp_path, "train.steps=3", "lock=[towers.image.*]")
    trainer = Trainer(cfg, show_progress=False)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.run()
    after = trainer.model.state_dict()
    for key in before:
        same = torch.equal(before[key], after[key])
        assert same if key.startswith("towers.image.") else True, key
    assert not torch.equal(before["towers.text.proj.weight"], after["towers.text.proj.weight"])
    state_params = {id(p) for p in trainer.optimizer.state}
    image_params = {id(p) for p in trainer.model.towers["image"].parameters()}
    assert state_params and not state_params & image_params


def test_unknown_lock_pattern_is_an_error(tmp_path: Path) -> None:
    from omnibind.errors import InputError

    with pytest.raises(InputError, match="matches no parameter"):
        Trainer(config(tmp_path, "lock=[towers.video.*]"), show_progress=False)


def test_gradient_caching_equals_one_big_batch(tmp_path: Path) -> None:
    """accum_steps=4 with gradient caching gives the parameters of accum_steps=1 on the same batches."""
    results = []
    for accum in (1, 4):
        cfg = config(tmp_path / str(accum), "train.steps=3", f"train.accum_steps={accum}", "optim.eps=1e-3")
        trainer = Trainer(cfg, show_progress=False)
        trainer.run()
        results.append(trainer.model.state_dict())
    worst = max((results[0][k] - results[1][k]).abs().max().item() for k in results[0])
    assert worst < 1e-5, worst


def test_binding_a_new_audio_tower_to_frozen_image_and_text(tmp_path: Path, spiece_model: Path) -> None:
    """ImageBind-style: start from an image–text checkpoint, add an audio tower, train only it."""
    base = saved_image_text_model(tmp_path / "base", spiece_model)
    cfg = config(tmp_path, f"model.init_from={tmp_path / 'base'}", "loss.pairs=[[audio,text],[audio,image]]",
                 "lock=[towers.image.*,towers.text.*,logit_scale,logit_bias]", "train.steps=3")
    trainer = Trainer(cfg, show_progress=False)
    assert trainer.model.modalities == ("image", "text", "audio")
    trainer.run()
    after = trainer.model.state_dict()
    for key, value in base.state_dict().items():
        assert torch.equal(value, after[key]), key
    trainable = {n for n, p in trainer.model.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith("towers.audio.") for n in trainable)


@pytest.mark.slow
def test_compiled_towers_train_like_eager(tmp_path: Path) -> None:
    """train.compile=true (torch.compile of each tower, inductor on CPU) ends where eager training does."""
    results = []
    for compiled in (False, True):
        cfg = config(tmp_path / str(compiled), "train.steps=3", f"train.compile={str(compiled).lower()}",
                     "model.modalities=[image,text]", "loss.pairs=[[image,text]]", "optim.eps=1e-3")
        trainer = Trainer(cfg, show_progress=False)
        trainer.run()
        results.append({k: v.detach().clone() for k, v in trainer.model.state_dict().items()})
    worst = max((results[0][k] - results[1][k]).abs().max().item() for k in results[0])
    assert worst < 1e-4, worst


def test_lit_keeps_the_image_tower_and_starts_text_afresh(tmp_path: Path, spiece_model: Path) -> None:
    """model.init_towers=[image]: the image tower (and t', b) come from the checkpoint, text is re-drawn."""
    base = saved_image_text_model(tmp_path / "base", spiece_model)
    cfg = config(tmp_path, f"model.init_from={tmp_path / 'base'}", "model.init_towers=[image]",
                 "model.modalities=[image,text]", "model.towers={}", "loss.pairs=[[image,text]]")
    model = Trainer(cfg, show_progress=False).model
    assert model.config.towers["text"] == base.config.towers["text"]  # same shape, fresh weights
    after = model.state_dict()
    kept = [k for k in base.state_dict() if not k.startswith("towers.text.")]
    assert all(torch.equal(base.state_dict()[k], after[k]) for k in kept)
    redrawn = [k for k in base.state_dict() if k.startswith("towers.text.") and k.endswith("qkv.weight")]
    assert redrawn and not any(torch.equal(base.state_dict()[k], after[k]) for k in redrawn)
    with pytest.raises(ValueError, match="init_towers"):
        Trainer(config(tmp_path, f"model.init_from={tmp_path / 'base'}", "model.init_towers=[audio]"),
                show_progress=False)


def test_loss_scalars_start_where_the_config_says(tmp_path: Path) -> None:
    default = Trainer(config(tmp_path / "a"), show_progress=False).model
    assert default.logit_scale.item() == pytest.approx(math.log(10)) and default.logit_bias.item() == -10
    chosen = Trainer(config(tmp_path / "b", "model.logit_bias_init=0", "model.logit_scale_init=1.5"),
                     show_progress=False).model
    assert chosen.logit_bias.item() == 0 and chosen.logit_scale.item() == 1.5


def test_cached_data_trains_and_resumes_exactly(tmp_path: Path, media_files: dict[str, Path],
                                                spiece_model: Path) -> None:
    """data.kind=cached: a manifest decoded once; resuming from step 2 ends where the unbroken run did."""
    import json
    import shutil

    captions = ["a photo", "a red circle", "a tone", "a chirp", "a photo and a tone", "a circle and a chirp"]
    pairs = [("photo", None), ("drawing", None), (None, "tone"), (None, "chirp"), ("photo", "tone"),
             ("drawing", "chirp")]
    lines = [{"key": f"k{i}", "text": text, **({"image": str(media_files[img])} if img else {}),
              **({"audio": str(media_files[snd])} if snd else {})}
             for i, (text, (img, snd)) in enumerate(zip(captions, pairs, strict=True))]
    manifest = tmp_path / "set.jsonl"
    manifest.write_text("".join(json.dumps(line) + "\n" for line in lines))
    cfg = config(tmp_path, "data.kind=cached", f"data.shards={manifest}", "data.batch_size=4", "data.num_workers=0",
                 f"model.tokenizer={spiece_model}", "train.steps=4", "train.ckpt_every=2", "train.keep_last=3")
    unbroken = Trainer(cfg, show_progress=False)
    unbroken.run()
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["examples_seen"] == 16 and summary["parameters"]["frozen"] == 0
    shutil.rmtree(tmp_path / "run" / "checkpoints" / "step-00000004")
    resumed = Trainer(cfg, resume=True, show_progress=False)
    assert resumed.step == 2 and resumed.data.next_index == 2
    resumed.run()
    for key, value in unbroken.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key


def test_a_model_can_start_from_a_checkpoint_with_more_towers(tmp_path: Path, spiece_model: Path) -> None:
    """init_from a tri-modal checkpoint, train image–text only: the shared towers are loaded, audio left out."""
    from helpers import tiny_model

    base = tiny_model(spiece_model)
    omnibind.save(base, tmp_path / "base")
    cfg = config(tmp_path, f"model.init_from={tmp_path / 'base'}", "model.modalities=[image,text]",
                 "loss.pairs=[[image,text]]")
    model = Trainer(cfg, show_progress=False).model
    assert model.modalities == ("image", "text")
    assert all(torch.equal(v, base.state_dict()[k]) for k, v in model.state_dict().items())
