"""PaliGemma folders holding only SentencePiece's tokenizer.model (no tokenizer.json), and prompts with an `<image>`
placeholder: ids, logits and greedy tokens equal transformers' PaliGemmaProcessor and generate on the same folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch

import omnibind
from convert.test_paligemma_parity import LOGIT_TOL, PROMPTS, pictures
from generation.paligemma_folders import Folder, tiny_folder
from omnibind.errors import InputError
from omnibind.generation import Decoding, Generator
from omnibind.generation.tokenizer import IMAGE_TOKEN, PromptTokenizer

EXTRA = ["\t tab  x", "<mask> and <unk> <bos> ok", "  many   spaces  ", "ÆØÅ 日本語 🙂", "x" * 40]
PLACED = ["<image>caption en", "what <image> is on the mat?", "describe <image>", "<image>", "a<image>b <loc0001>"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Folder:
    return tiny_folder(tmp_path_factory)


@pytest.fixture(scope="module")
def spm_only(tiny: Folder, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny folder with tokenizer.model in place of tokenizer.json (and no path to the training folder)."""
    folder = tmp_path_factory.mktemp("spm_only") / "paligemma"
    shutil.copytree(tiny.path, folder, ignore=shutil.ignore_patterns("spm", "tokenizer.json"))
    shutil.copy(tiny.path / "spm" / "tokenizer.model", folder / "tokenizer.model")
    settings = json.loads((folder / "tokenizer_config.json").read_text())
    settings.pop("vocab_file", None)
    (folder / "tokenizer_config.json").write_text(json.dumps(settings))
    return folder


@pytest.fixture(scope="module")
def processor(spm_only: Path) -> Any:
    """transformers' processor built from the tokenizer.model folder (its own SentencePiece conversion)."""
    from transformers import PaliGemmaProcessor

    return PaliGemmaProcessor.from_pretrained(str(spm_only))


@pytest.fixture(scope="module")
def loaded(spm_only: Path) -> Generator:
    model = omnibind.load(spm_only)
    assert isinstance(model, Generator)
    return model


def image_tokens(model: Generator) -> int:
    image = model.config.encoders.towers["image"]
    return int((image.image_size // image.patch_size) ** 2)  # type: ignore[attr-defined]


def expanded(model: Generator, prompt: str) -> list[int]:
    """Our prompt ids with the placeholder (or the opening media) spelled as the processor's image ids."""
    tokenizer = model.tokenizer
    assert isinstance(tokenizer, PromptTokenizer)
    ids = tokenizer.prompt_ids(prompt)
    at = ids.index(tokenizer.image_id) if tokenizer.image_id in ids else -1
    images = [tokenizer.image_id] * image_tokens(model)
    return images + ids if at < 0 else ids[:at] + images + ids[at + 1:]


def test_tokenizer_model_is_read_when_tokenizer_json_is_absent(spm_only: Path, loaded: Generator,
                                                               processor: Any) -> None:
    assert not (spm_only / "tokenizer.json").exists()
    assert isinstance(loaded.tokenizer, PromptTokenizer) and loaded.tokenizer.source.name == "tokenizer.model"
    assert len(loaded.tokenizer) == len(processor.tokenizer)
    assert loaded.tokenizer.image_id == processor.image_token_id


def test_tokenizer_model_ids_match_the_processor(loaded: Generator, processor: Any) -> None:
    image = pictures(1)
    for prompt in PROMPTS + EXTRA:
        expected = processor(images=image, text=[IMAGE_TOKEN + prompt])["input_ids"][0]
        assert expanded(loaded, prompt) == expected, prompt


def test_tokenizer_model_suffix_and_decode_match(loaded: Generator, processor: Any) -> None:
    assert loaded.tokenizer is not None
    for text in ("a cat on a mat", "ünïcödé ✓ 123", "two\nlines"):
        ids = processor.tokenizer(text, add_special_tokens=False)["input_ids"]
        assert loaded.tokenizer.suffix_ids(text) == [*ids, loaded.config.eos_id]
        assert loaded.tokenizer.decode(ids) == processor.tokenizer.decode(ids, skip_special_tokens=True)


def test_tokenizer_model_generator_saves_and_loads(loaded: Generator, tmp_path: Path) -> None:
    """Saving writes the converted tokenizer as tokenizer.json, which loads back to the same ids."""
    omnibind.save(loaded, tmp_path / "saved")
    again = omnibind.load(tmp_path / "saved")
    assert isinstance(again, Generator) and isinstance(again.tokenizer, PromptTokenizer)
    assert again.tokenizer.source.name == "tokenizer.json"
    for prompt in PROMPTS + PLACED:
        assert again.tokenizer.prompt_ids(prompt) == loaded.tokenizer.prompt_ids(prompt)  # type: ignore[union-attr]


def test_placeholder_prompt_ids_match_the_processor(tiny: Folder) -> None:
    model = omnibind.load(tiny.path)
    assert isinstance(model, Generator)
    image = pictures(1)
    for prompt in PLACED:
        expected = tiny.processor(images=image, text=[prompt])["input_ids"][0]
        assert expanded(model, prompt) == expected, prompt
    assert isinstance(model.tokenizer, PromptTokenizer)  # a leading placeholder: the usual layout
    placed = model.tokenizer.prompt_ids("<image>caption en")
    assert placed == [model.tokenizer.image_id, *model.tokenizer.prompt_ids("caption en")]
    with torch.no_grad():
        one = model.prefix([placed], {"image": image})
        other = model.prefix([placed[1:]], {"image": image})
    assert torch.equal(one.embeds, other.embeds) and torch.equal(one.valid, other.valid)


def test_placeholder_logits_and_greedy_tokens_match_transformers(tiny: Folder) -> None:
    """The media tokens go where the placeholder is (text before them, BOS after): same logits and tokens."""
    model = omnibind.load(tiny.path)
    assert isinstance(model, Generator) and model.tokenizer is not None
    prompts, images = ["what <image> is on the mat?", "describe <image>"], pictures(2)
    inputs = tiny.processor(images=images, text=prompts, return_tensors="pt", padding="longest")
    inputs = {k: v for k, v in inputs.items() if k != "labels"}
    valid = inputs["attention_mask"].bool()
    positions = (valid.long().cumsum(1) - 1).clamp(min=0) + 1
    with torch.no_grad():
        ref = tiny.model(**inputs, position_ids=positions).logits
        prefix = model.prefix([model.tokenizer.prompt_ids(p) for p in prompts], {"image": list(inputs["pixel_values"])})
        logits = model(prefix)
        out = tiny.model.generate(**inputs, max_new_tokens=8, do_sample=False)[:, inputs["input_ids"].shape[1]:]
    assert logits.shape == ref.shape
    assert float((logits - ref)[valid].abs().max()) <= LOGIT_TOL
    eos = model.config.eos_id
    theirs = [row[: row.index(eos)] if eos in row else row for row in out.tolist()]
    ours = model.generate_ids([model.tokenizer.prompt_ids(p) for p in prompts], {"image": images},
                              Decoding(max_new_tokens=8))
    assert ours == theirs


def test_placeholder_misuse_is_refused(tiny: Folder) -> None:
    model = omnibind.load(tiny.path)
    assert isinstance(model, Generator)
    with pytest.raises(InputError, match="2 <image> placeholders"):
        model.generate("<image><image>caption en", image=pictures(1)[0])
    with pytest.raises(InputError, match="placeholder but no media"):
        model.generate("what <image> is")
