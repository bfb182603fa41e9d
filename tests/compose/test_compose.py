"""Composing an image–text and an audio–text checkpoint (made in conftest) into one model in the first's
space: every modality encodes into that space, the base towers are the base checkpoint's bit for bit, the
foreign towers are the other checkpoint's behind a connector, and the result saves and loads as any
checkpoint does; `omnibind compose` names a bad --from spec."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from compose_fixtures import AUDIO, IMAGE, TEXT, specs
from typer.testing import CliRunner

import omnibind
from omnibind.cli import app
from omnibind.compose import compose, save_composed
from omnibind.errors import InputError

SENTENCES = ["a photo of the cat", "the sound of a piano", "red car"]


def under(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_every_modality_encodes_into_the_base_space(sources: dict[str, Path]) -> None:
    a, b = omnibind.load(sources["a"]), omnibind.load(sources["b"])
    model = compose(specs(sources))
    assert model.modalities == (IMAGE, TEXT, AUDIO) and model.config.embed_dim == 32
    state, base, foreign = model.state_dict(), a.state_dict(), b.state_dict()
    assert same(under(state, "towers.image."), under(base, "towers.image."))  # base towers bit-identical
    assert same(under(state, "towers.text.base."), under(base, "towers.text."))
    assert same(under(state, "towers.text.anchors.0."), under(foreign, "towers.text."))
    assert same(under(state, "towers.audio.inner."), under(foreign, "towers.audio."))
    assert torch.equal(model.logit_scale, a.logit_scale) and torch.equal(model.logit_bias, a.logit_bias)

    pixels = torch.rand(3, 3, 32, 32)
    mel = torch.randn(3, 32, 128)
    with torch.no_grad():
        assert torch.equal(model.encode(IMAGE, pixels), a.encode(IMAGE, pixels))
        assert torch.equal(model.encode(TEXT, SENTENCES), a.encode(TEXT, SENTENCES))
        sound = model.encode(AUDIO, mel)
        foreign_sound = b.encode(AUDIO, mel)
        expected = torch.nn.functional.normalize(model.towers[AUDIO].connector(foreign_sound), dim=-1)
        anchor = model.towers[TEXT].anchor(AUDIO, model.preprocess(TEXT, SENTENCES))
    assert sound.shape == (3, 32) and torch.allclose(sound, expected, atol=1e-6)
    assert torch.allclose(torch.nn.functional.normalize(anchor, dim=-1), b.encode(TEXT, SENTENCES), atol=1e-6)


def test_save_and_load_round_trip(sources: dict[str, Path], tmp_path: Path) -> None:
    model = compose(specs(sources), connector="mlp", hidden=48, seed=3)
    folder = save_composed(model, tmp_path / "composed")
    assert sorted(p.name for p in folder.iterdir()) == ["anchor0.spiece.model", "config.json", "model.safetensors",
                                                        "spiece.model"]
    loaded = omnibind.load(folder)
    assert loaded.config.to_dict() == model.config.to_dict()
    assert same(loaded.state_dict(), model.state_dict())
    assert model.towers[AUDIO].connector.layers[0].out_features == 48
    with torch.no_grad():
        examples = ((IMAGE, torch.rand(2, 3, 32, 32)), (TEXT, SENTENCES), (AUDIO, torch.randn(2, 32, 128)))
        for modality, inputs in examples:
            assert torch.equal(loaded.encode(modality, inputs), model.encode(modality, inputs))


def test_seeded_connectors_are_reproducible(sources: dict[str, Path]) -> None:
    one, two = compose(specs(sources), seed=5), compose(specs(sources), seed=5)
    other = compose(specs(sources), seed=6)
    weight = f"towers.{AUDIO}.connector.layers.0.weight"
    assert torch.equal(one.state_dict()[weight], two.state_dict()[weight])
    assert not torch.equal(one.state_dict()[weight], other.state_dict()[weight])


@pytest.mark.parametrize(("make_specs", "message"), [
    (lambda a, b: [f"{IMAGE},{TEXT}={a}", f"smell,{TEXT}={b}"], r"--from smell,text=\S+: unknown modality 'smell'"),
    (lambda a, b: [f"{IMAGE},{TEXT}={a}", f"{AUDIO},{TEXT}={a}"],
     r"--from audio,text=\S+/a: \S+/a has no audio tower \(expected modalities of that checkpoint: image, text\)"),
    (lambda a, b: [f"{IMAGE},{TEXT}={a}", f"{AUDIO},{TEXT}={b}", f"{AUDIO}={b}"],
     r"--from audio=\S+/b: a second source for audio \(also from --from audio,text=\S+/b\)"),
    (lambda a, b: [f"{IMAGE},{TEXT}={a}", f"{IMAGE},{AUDIO}={b}"],
     r"--from image,audio=\S+: a second source for image"),
    (lambda a, b: [f"{IMAGE},{TEXT}={a}", f"{TEXT}={b}"], r"--from text=\S+: adds no modality to the base"),
    (lambda a, b: [f"{IMAGE},{TEXT}"], r"--from image,text: names no checkpoint"),
    (lambda a, b: [], r"--from: no source given \(expected the base first"),
])
def test_cli_errors_name_the_bad_spec(sources: dict[str, Path], tmp_path: Path, make_specs, message: str) -> None:
    args = [x for spec in make_specs(sources["a"], sources["b"]) for x in ("--from", spec)]
    result = CliRunner().invoke(app, ["compose", str(tmp_path / "out"), *args])
    assert result.exit_code == 2, result.output
    assert re.search(message, " ".join(result.output.split())), result.output
    assert not (tmp_path / "out").exists()


def test_cli_writes_a_checkpoint_that_loads(sources: dict[str, Path], tmp_path: Path) -> None:
    args = [x for spec in specs(sources) for x in ("--from", spec)]
    result = CliRunner().invoke(app, ["compose", str(tmp_path / "out"), *args, "--connector", "mlp"])
    assert result.exit_code == 0, result.output
    assert "audio (connected)" in result.output and "text (anchored)" in result.output
    loaded = omnibind.load(tmp_path / "out")
    assert loaded.config.towers[AUDIO].options["connector"] == "mlp"
    info = CliRunner().invoke(app, ["info", str(tmp_path / "out")], env={"COLUMNS": "400"})
    assert info.exit_code == 0, info.output
    assert "connected vit tower of a 24-d space, mlp (32 hidden) connector" in info.output
    assert "16 tokens, vocab" in info.output and "anchors: siglip text tower (12 tokens) of a 24-d space" in info.output


def test_an_unknown_connector_is_refused(sources: dict[str, Path]) -> None:
    with pytest.raises(InputError, match=r"--connector: is 'cubic' \(expected one of \['linear', 'mlp'\]\)"):
        compose(specs(sources), connector="cubic")


def test_paired_binding_without_an_anchor(sources: dict[str, Path]) -> None:
    """--from audio=CKPT_B (no shared text): the audio tower is connected, the text tower stays the base's."""
    model = compose([specs(sources)[0], f"{AUDIO}={sources['b']}"])
    assert model.config.towers[TEXT].kind == "siglip" and model.config.towers[AUDIO].kind == "connected"
    assert not hasattr(model.towers[TEXT], "anchor")
    base = omnibind.load(sources["a"]).state_dict()
    assert same(under(model.state_dict(), "towers.text."), under(base, "towers.text."))


def test_a_base_without_text_connects_the_other_text_tower(sources: dict[str, Path], tmp_path: Path) -> None:
    """--from image=A --from text,audio=B: B's text and audio towers are both connected (no anchor), with B's
    tokenizer, and the checkpoint round-trips."""
    model = compose([f"{IMAGE}={sources['a']}", f"{TEXT},{AUDIO}={sources['b']}"])
    assert [model.config.towers[m].kind for m in (TEXT, AUDIO)] == ["connected", "connected"]
    foreign = omnibind.load(sources["b"])
    with torch.no_grad():
        expected = torch.nn.functional.normalize(model.towers[TEXT].connector(foreign.encode(TEXT, SENTENCES)), dim=-1)
        assert torch.allclose(model.encode(TEXT, SENTENCES), expected, atol=1e-6)
        loaded = omnibind.load(save_composed(model, tmp_path / "composed"))
        assert torch.equal(loaded.encode(TEXT, SENTENCES), model.encode(TEXT, SENTENCES))
