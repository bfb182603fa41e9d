"""omnibind.load(..., kind=...) on a mixed checkpoint (captioning beside a contrastive loss): "embedding" gives the
OmniBind inside it, whose embeddings equal those of the same towers exactly, "auto" and "generator" the Generator; a
checkpoint without what the asked kind needs is refused, naming the folder and what it lacks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

import omnibind
import omnibind.modalities as registry
from generation.generators import TOWER, tiny_generator
from generation.mixed_checkpoints import mixed_checkpoint, mixed_parts
from omnibind.config import model_config
from omnibind.errors import CheckpointError, InputError
from omnibind.generation import Generator, GeneratorConfig
from omnibind.train.config import load_train_config
from omnibind.train.trainer import Trainer

IMAGE, AUDIO, TEXT = registry.IMAGE.name, registry.AUDIO.name, registry.TEXT.name
ROOT = Path(__file__).parents[2]
OPTIONS = ("loss.options={decoder: {width: 32, depth: 1, heads: 2, head_dim: 16, mlp_dim: 64}, "
           "tasks: [{prompt: caption en, media: [image]}, {prompt: describe the sound, media: [audio]}], "
           "contrastive: sigmoid}")


def inputs(seed: int = 0) -> dict[str, object]:
    rng = torch.Generator().manual_seed(seed)
    return {IMAGE: torch.randn(3, 3, 32, 32, generator=rng), AUDIO: torch.randn(3, 32, 128, generator=rng),
            TEXT: ["a red circle", "a piano note", "the ocean at night"]}


def test_a_mixed_checkpoint_loads_as_either_model(tmp_path: Path, spiece_model: Path) -> None:
    folder = mixed_checkpoint(tmp_path / "mixed", spiece_model)
    original, generator = mixed_parts(spiece_model)
    embedding = omnibind.load(folder, kind="embedding")
    assert type(embedding) is omnibind.OmniBind and embedding.modalities == (IMAGE, TEXT, AUDIO)
    assert not any(k.startswith(("decoder.", "project.")) for k in embedding.state_dict())
    assert all(torch.equal(v, embedding.state_dict()[k]) for k, v in original.state_dict().items())
    for modality, batch in inputs().items():
        assert torch.equal(embedding.encode(modality, batch), original.encode(modality, batch)), modality
    for kind in ("auto", "generator"):
        loaded = omnibind.load(folder, kind=kind)
        assert isinstance(loaded, Generator) and loaded.modalities == (IMAGE, AUDIO)
        assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in generator.state_dict().items())
    assert isinstance(omnibind.load(folder), Generator)  # today's behaviour stays the default


def test_a_mixed_training_run_loads_as_an_embedding_model(tmp_path: Path, spiece_model: Path) -> None:
    config = load_train_config(ROOT / "configs" / "tiny_synthetic.yaml", [
        f"run_dir={tmp_path / 'run'}", "loss.kind=captioning", OPTIONS, f"model.tokenizer={spiece_model}",
        "data.batch_size=8", "train.steps=2", "train.ckpt_every=2", "optim.warmup_steps=1", "train.log_every=1"])
    trainer = Trainer(config, show_progress=False)
    trainer.run()
    folder = trainer.final_model_dir()
    saved = load_file(folder / "model.safetensors")
    assert any(k.startswith("decoder.") for k in saved) and "logit_scale" in saved
    embedding = omnibind.load(folder, kind="embedding")
    generator = omnibind.load(folder, kind="generator")
    assert type(embedding) is omnibind.OmniBind and isinstance(generator, Generator)
    assert all(torch.equal(v, saved[k]) for k, v in embedding.state_dict().items())
    for modality in (IMAGE, AUDIO):  # the same towers: the generator's, pooled, give the embedding model's vectors
        batch = inputs()[modality]
        assert torch.equal(embedding.encode(modality, batch), F.normalize(generator.towers[modality](batch), dim=-1))
    texts = inputs()[TEXT]
    again = omnibind.OmniBind(embedding.config, embedding.processors)
    again.load_state_dict({k: v for k, v in saved.items() if not k.startswith(("decoder.", "project."))})
    assert torch.equal(embedding.encode(TEXT, texts), again.eval().encode(TEXT, texts))


def test_a_generator_alone_is_not_an_embedding_model(tmp_path: Path) -> None:
    folder = omnibind.save(tiny_generator(), tmp_path / "generator")
    with pytest.raises(CheckpointError, match=r"generator.*logit_scale.*logit_bias") as caught:
        omnibind.load(folder, kind="embedding")
    assert str(folder) in str(caught.value)
    image_only = tiny_generator()
    encoders = model_config("Ti/16", (IMAGE,), embed_dim=32, image=dict(TOWER, image_size=32, patch_size=8))
    one = Generator(GeneratorConfig(encoders, image_only.config.decoder))
    one.towers[IMAGE].load_state_dict(image_only.towers[IMAGE].state_dict())
    folder = omnibind.save(one, tmp_path / "one-tower")
    with pytest.raises(CheckpointError, match=r"a second tower \(it has 1\)"):
        omnibind.load(folder, kind="embedding")


def test_an_embedding_checkpoint_is_not_a_generator(tiny_checkpoint: Path) -> None:
    with pytest.raises(CheckpointError, match=r"no 'decoder' section") as caught:
        omnibind.load(tiny_checkpoint, kind="generator")
    assert str(tiny_checkpoint) in str(caught.value)
    assert type(omnibind.load(tiny_checkpoint, kind="embedding")) is omnibind.OmniBind
    with pytest.raises(InputError, match=r"kind: got 'decoder'.*'auto' or 'embedding' or 'generator'"):
        omnibind.load(tiny_checkpoint, kind="decoder")


def test_the_cli_embeds_with_a_mixed_checkpoint(tmp_path: Path, spiece_model: Path) -> None:
    from typer.testing import CliRunner

    from omnibind.cli import app

    folder = mixed_checkpoint(tmp_path / "mixed", spiece_model)
    out = tmp_path / "emb.npy"
    result = CliRunner().invoke(app, ["embed", "-m", str(folder), "--text", "a red circle", "-o", str(out),
                                      "--runtime", "fp32"])
    assert result.exit_code == 0, result.output
    original, _ = mixed_parts(spiece_model)
    with torch.no_grad():
        assert np.array_equal(np.load(out)[0], original.encode(TEXT, ["a red circle"])[0].numpy())


def test_a_captioning_run_starts_a_lit_run(tmp_path: Path, spiece_model: Path) -> None:
    """model.init_from a captioning run's checkpoint takes its towers (CapPa's towers judged by LiT)."""
    from omnibind.train.build import build_model
    from omnibind.train.config import ModelSection, TrainConfig

    folder = mixed_checkpoint(tmp_path / "mixed", spiece_model)
    original, _ = mixed_parts(spiece_model)
    image = registry.IMAGE.name
    section = ModelSection(modalities=[image, TEXT], tokenizer=str(spiece_model), init_from=str(folder),
                           init_towers=[image])
    model = build_model(TrainConfig(model=section))
    kept = original.towers[image].state_dict()
    assert all(torch.equal(v, kept[k]) for k, v in model.towers[image].state_dict().items())
    fresh = original.towers[TEXT].state_dict()
    assert not all(torch.equal(v, fresh[k]) for k, v in model.towers[TEXT].state_dict().items())
