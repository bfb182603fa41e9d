"""Native generator checkpoints: omnibind.save / omnibind.load round-trip a Generator (a transformers PaliGemma
folder's, with its tokenizers-library tokenizer, and one without a tokenizer) to identical weights and
generations; a bad decoder section is refused naming its field; `omnibind info` describes a generator; an
embedding model's checkpoint still loads as OmniBind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import omnibind
from generation.generators import tiny_generator
from generation.paligemma_folders import tiny_folder
from omnibind.cli import app
from omnibind.errors import CheckpointError
from omnibind.generation import Decoding, Generator
from omnibind.generation.tokenizer import PromptTokenizer


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_a_paligemma_generator_round_trips(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory,
                                           media_files: dict[str, Path]) -> None:
    original = omnibind.load(tiny_folder(tmp_path_factory).path)
    saved = omnibind.save(original, tmp_path / "native")
    meta = json.loads((saved / "config.json").read_text())
    assert meta["format"] == "omnibind" and meta["decoder"]["tokenizer"]["kind"] == "tokenizers"
    again = omnibind.load(saved)
    assert isinstance(again, Generator) and isinstance(again.tokenizer, PromptTokenizer)
    assert same_weights(original, again)
    prompts = ["caption en", "what instrument is this?"]
    kwargs = dict(image=[media_files["photo"], media_files["drawing"]], max_new_tokens=8, beams=2)
    assert again.generate(prompts, **kwargs) == original.generate(prompts, **kwargs)


def test_a_generator_without_tokenizer_round_trips_on_ids(tmp_path: Path) -> None:
    model = tiny_generator()
    again = omnibind.load(omnibind.save(model, tmp_path / "g"))
    assert isinstance(again, Generator) and again.tokenizer is None and same_weights(model, again)
    image = torch.randn(3, 32, 32, generator=torch.Generator().manual_seed(0))
    media = {"image": [image, None], "audio": [None, torch.randn(32, 128)]}
    settings = Decoding(max_new_tokens=5)
    assert again.generate_ids([[2, 5, 6], [2, 7]], media, settings) == model.generate_ids([[2, 5, 6], [2, 7]], media,
                                                                                          settings)


def test_a_bad_decoder_section_names_its_field(tmp_path: Path) -> None:
    folder = omnibind.save(tiny_generator(), tmp_path / "g")
    meta = json.loads((folder / "config.json").read_text())
    meta["decoder"]["config"]["layers"] = 3
    (folder / "config.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=r"decoder\.config"):
        omnibind.load(folder)
    del meta["decoder"]["config"]["layers"]
    meta["decoder"]["tokenizer"] = {"kind": "wordpiece"}
    (folder / "config.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=r"decoder\.tokenizer\.kind"):
        omnibind.load(folder)


def test_info_describes_a_generator_and_still_an_embedding_model(tmp_path: Path, tiny_checkpoint: Path) -> None:
    folder = omnibind.save(tiny_generator(), tmp_path / "g")
    result = CliRunner().invoke(app, ["info", str(folder)])
    assert result.exit_code == 0, result.output
    assert "decoder: width 48, depth 2" in result.output and "image" in result.output
    assert isinstance(omnibind.load(tiny_checkpoint), omnibind.OmniBind)
    result = CliRunner().invoke(app, ["info", str(tiny_checkpoint)])
    assert result.exit_code == 0 and "logit scale" in result.output


def test_media_without_a_projection_are_left_out(tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    model = tiny_generator()
    folder = omnibind.save(model, tmp_path / "g")
    weights = load_file(folder / "model.safetensors")
    save_file({k: v for k, v in weights.items() if not k.startswith("project.audio.")}, folder / "model.safetensors")
    again = omnibind.load(folder)
    assert again.modalities == ("image",) and "audio" not in again.project
    image = torch.randn(3, 32, 32, generator=torch.Generator().manual_seed(0))
    settings = Decoding(max_new_tokens=5)
    assert again.generate_ids([[2, 5]], {"image": [image]}, settings) == model.generate_ids(
        [[2, 5]], {"image": [image]}, settings)
