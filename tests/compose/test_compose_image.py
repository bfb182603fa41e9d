"""A foreign image tower connects like any other: an audio–text base space (a tiny omnibind model; a CLAP folder
written by transformers) and an image–text model's picture tower (omnibind's ViT, a NaFlex tower, a SigLIP
folder) behind a connector. Pictures embed into the base space through it, the base towers stay bit-identical,
the checkpoint saves and loads, and `omnibind train` with the text bridge trains the image connector alone
(CLAP's batch-norm statistics, in the base's audio tower, untouched)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from compose_fixtures import AUDIO, IMAGE, TEXT, tiny
from foreign_folders import CLAP_DIM, SIGLIP_DIM, clap_folder, siglip_folder
from PIL import Image
from typer.testing import CliRunner

import omnibind
from omnibind.cli import app
from omnibind.compose import compose, save_composed
from omnibind.runlog import read_metrics
from omnibind.train.config import load_train_config
from omnibind.train.state import latest
from omnibind.train.trainer import Trainer

CONFIG = Path(__file__).parents[2] / "configs" / "compose_image_text_bridge.yaml"
SENTENCES = ["a red circle", "a dog barks twice", "Rain on a tin roof!"]


def train(composed: Path, run: Path, *overrides: str) -> Path:
    """Train the shipped image text-bridge config on synthetic batches; the last checkpoint's folder."""
    cfg = load_train_config(CONFIG, [
        f"run_dir={run}", f"model.init_from={composed}", "data.kind=synthetic", "data.batch_size=8",
        "data.synthetic_classes=4", "eval.splits={}", "train.log_every=1", "optim.warmup_steps=1", *overrides])
    Trainer(cfg, show_progress=False).run()
    folder = latest(run / "checkpoints")
    assert folder is not None
    return folder


def changed(before: Path, after: Path) -> set[str]:
    """The names of the weights (and buffers) that differ between two checkpoints."""
    one, two = omnibind.load(before).state_dict(), omnibind.load(after).state_dict()
    assert one.keys() == two.keys()
    return {k for k in one if not torch.equal(one[k], two[k])}


def test_a_picture_tower_connects_into_an_audio_text_space(sources: dict[str, Path], tmp_path: Path) -> None:
    """The other way round from the default: base b (audio, text; 24-d), pictures from a (image, text; 32-d)."""
    a, b = omnibind.load(sources["a"]), omnibind.load(sources["b"])
    model = compose([f"{AUDIO},{TEXT}={sources['b']}", f"{IMAGE},{TEXT}={sources['a']}"], connector="mlp")
    assert model.modalities == (IMAGE, TEXT, AUDIO) and model.config.embed_dim == 24
    assert model.config.towers[IMAGE].kind == "connected" and model.config.towers[TEXT].kind == "anchored"
    pixels, mel = torch.rand(3, 3, 32, 32), torch.randn(3, 32, 128)
    with torch.no_grad():
        assert torch.equal(model.encode(AUDIO, mel), b.encode(AUDIO, mel))
        assert torch.equal(model.encode(TEXT, SENTENCES), b.encode(TEXT, SENTENCES))
        picture = model.encode(IMAGE, pixels)
        expected = F.normalize(model.towers[IMAGE].connector(a.encode(IMAGE, pixels)), dim=-1)
        anchor = model.towers[TEXT].anchor(IMAGE, model.preprocess(TEXT, SENTENCES))
    assert picture.shape == (3, 24) and torch.allclose(picture, expected, atol=1e-6)
    assert torch.allclose(F.normalize(anchor, dim=-1), a.encode(TEXT, SENTENCES), atol=1e-6)

    loaded = omnibind.load(save_composed(model, tmp_path / "composed"))
    assert loaded.config.to_dict() == model.config.to_dict()
    with torch.no_grad():
        assert torch.equal(loaded.encode(IMAGE, pixels), picture)
    info = CliRunner().invoke(app, ["info", str(tmp_path / "composed")], env={"COLUMNS": "400"})
    assert info.exit_code == 0, info.output
    assert "connected vit tower of a 32-d space, mlp (32 hidden) connector" in info.output


def test_a_naflex_picture_tower_connects_and_trains(sources: dict[str, Path], spiece_model: Path,
                                                    tmp_path: Path) -> None:
    """A NaFlex foreign tower: the connected tower takes its packed patches (input spec, preprocessor, synthetic
    batches), and text-alone training moves the image connector only."""
    naflex = tiny(spiece_model, (IMAGE, TEXT), 32, seed=3)
    naflex = omnibind.create("Ti/16", modalities=(IMAGE, TEXT), tokenizer=spiece_model, embed_dim=32,
                             image=dict(naflex.config.towers[IMAGE].__dict__, max_num_patches=16),
                             text=naflex.config.towers[TEXT].__dict__)
    folder = omnibind.save(naflex, tmp_path / "naflex")
    model = compose([f"{AUDIO},{TEXT}={sources['b']}", f"{IMAGE},{TEXT}={folder}"])
    assert model.config.towers[IMAGE].max_num_patches == 16
    assert model.processors[IMAGE].input_spec == naflex.processors[IMAGE].input_spec
    picture = Image.fromarray((torch.rand(40, 24, 3) * 255).to(torch.uint8).numpy())  # 3 × 5 patches of 8 px
    with torch.no_grad():
        expected = F.normalize(model.towers[IMAGE].connector(naflex.encode(IMAGE, [picture])), dim=-1)
        assert torch.allclose(model.encode(IMAGE, [picture]), expected, atol=1e-6)
    composed = save_composed(model, tmp_path / "composed")
    trained = train(composed, tmp_path / "run", "train.steps=2", "train.ckpt_every=2")
    moved = changed(composed, trained)
    assert moved and all(k.startswith(f"towers.{IMAGE}.connector.") for k in moved)


@pytest.fixture(scope="module")
def clap_siglip(tmp_path_factory: pytest.TempPathFactory, spiece_model: Path) -> dict[str, Path]:
    pytest.importorskip("transformers")
    root = tmp_path_factory.mktemp("clap_siglip")
    return {"clap": clap_folder(root / "clap"), "siglip": siglip_folder(root / "siglip", spiece_model)}


def test_clap_space_with_siglip_pictures(clap_siglip: dict[str, Path], tmp_path: Path,
                                         media_files: dict[str, Path]) -> None:
    """`omnibind compose OUT --from audio,text=CLAP --from image,text=SIGLIP`: SigLIP's pictures in CLAP's space."""
    out = tmp_path / "composed"
    result = CliRunner().invoke(app, ["compose", str(out), "--from", f"{AUDIO},{TEXT}={clap_siglip['clap']}",
                                      "--from", f"{IMAGE},{TEXT}={clap_siglip['siglip']}"])
    assert result.exit_code == 0, result.output
    assert "image (connected), text (anchored), audio (htsat)" in result.output
    model, clap, siglip = omnibind.load(out), omnibind.load(clap_siglip["clap"]), omnibind.load(clap_siglip["siglip"])
    assert model.config.embed_dim == CLAP_DIM and model.config.towers[IMAGE].options["embed_dim"] == SIGLIP_DIM
    pictures, sounds = [media_files["drawing"], media_files["photo"]], [media_files["tone"]]
    with torch.no_grad():
        assert torch.equal(model.encode(AUDIO, sounds), clap.encode(AUDIO, sounds))
        assert torch.equal(model.encode(TEXT, SENTENCES), clap.encode(TEXT, SENTENCES))
        expected = F.normalize(model.towers[IMAGE].connector(siglip.encode(IMAGE, pictures)), dim=-1)
        assert torch.allclose(model.encode(IMAGE, pictures), expected, atol=1e-6)
        anchor = model.towers[TEXT].anchor(IMAGE, model.preprocess(TEXT, SENTENCES))
        assert torch.allclose(F.normalize(anchor, dim=-1), siglip.encode(TEXT, SENTENCES), atol=1e-5)

    trained = train(out, tmp_path / "run", "train.steps=3", "train.ckpt_every=3", "optim.lr=1.0e-2")
    moved = changed(out, trained)
    assert moved and all(k.startswith(f"towers.{IMAGE}.connector.") for k in moved), sorted(moved)[:5]
    assert any("running_mean" in k for k in omnibind.load(out).state_dict())  # CLAP's batch norms, untouched
    losses = [r[f"loss/{IMAGE}~{TEXT}"] for r in read_metrics(tmp_path / "run") if f"loss/{IMAGE}~{TEXT}" in r]
    assert len(losses) == 3 and losses[-1] < losses[0]
