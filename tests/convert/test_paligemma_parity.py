"""transformers PaliGemma folders load as omnibind Generators with the same numbers: random-init checkpoints
written by transformers itself (a tiny one, and one at PaliGemma-3B's widths), compared on logits (within 1e-4),
greedy and beam-search tokens (identical), prompt ids and pixels (as PaliGemmaProcessor makes them)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

import omnibind
from generation.paligemma_folders import WIDE_TEXT, WIDE_VISION, Folder, tiny_folder, write_paligemma
from omnibind.errors import CheckpointError
from omnibind.generation import Decoding, Generator

LOGIT_TOL = 1e-4  # the bound; measured: 0 unpadded (tiny and 3B widths), 1.5e-7 in padded batches
PIXEL_TOL = 1e-6  # same PIL bicubic resize and float32 arithmetic; measured ~1.2e-7

PROMPTS = ["caption en", "What is <loc0012> on the mat?", "", "la voiture  rouge 123 ?", "ünïcödé ✓ text",
           " leading and trailing ", "two\nlines <seg042>"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Folder:
    """A tiny PaliGemma folder (16 image tokens, 2+2 layers, grouped-query attention with 2 KV heads)."""
    return tiny_folder(tmp_path_factory)


@pytest.fixture(scope="module")
def loaded(tiny: Folder) -> Generator:
    """The tiny folder through omnibind.load."""
    model = omnibind.load(tiny.path)
    assert isinstance(model, Generator)
    return model


def pictures(n: int) -> list[Image.Image]:
    """Random RGB pictures of different sizes (so that resizing is exercised)."""
    rng = np.random.default_rng(0)
    return [Image.fromarray((rng.random((30 + 7 * i, 50 - 5 * i, 3)) * 255).astype(np.uint8)) for i in range(n)]


def hf_inputs(folder: Folder, prompts: list[str], images: list[Image.Image], **kwargs: Any) -> dict[str, Any]:
    """PaliGemmaProcessor's batch (left-padded), without the training labels."""
    batch = folder.processor(images=images, text=["<image>" + p for p in prompts], return_tensors="pt",
                             padding="longest", **kwargs)
    return {k: v for k, v in batch.items() if k != "labels"}


def real_ids(inputs: dict[str, Any], row: int) -> list[int]:
    """One row's input ids without padding."""
    ids: list[int] = inputs["input_ids"][row][inputs["attention_mask"][row].bool()].tolist()
    return ids


def test_load_finds_the_paligemma_converter(tiny: Folder, loaded: Generator) -> None:
    assert loaded.modalities == ("image",)
    assert loaded.config.decoder.kv_heads == 2 and loaded.config.decoder.heads == 4
    assert not loaded.training


def test_prompt_ids_match_the_processor(tiny: Folder, loaded: Generator) -> None:
    image = loaded.config.encoders.towers["image"]
    image_tokens = (image.image_size // image.patch_size) ** 2  # type: ignore[attr-defined]
    assert loaded.tokenizer is not None
    for prompt in PROMPTS:
        inputs = hf_inputs(tiny, [prompt], pictures(1))
        expected = real_ids(inputs, 0)
        assert expected[:image_tokens] == [tiny.processor.image_token_id] * image_tokens
        assert loaded.tokenizer.prompt_ids(prompt) == expected[image_tokens:], prompt


def test_pixels_match_the_processor(tiny: Folder, loaded: Generator) -> None:
    images = pictures(3)
    inputs = hf_inputs(tiny, ["x"] * 3, images)
    ours = loaded.processors["image"].batch(images)
    assert (ours - inputs["pixel_values"]).abs().max().item() <= PIXEL_TOL


def compare_logits(folder: Folder, model: Generator, prompts: list[str], suffixes: list[str] | None = None) -> float:
    """Largest |logit difference| over every real position (padding excluded) of a processor batch."""
    images = pictures(len(prompts))
    kwargs = {"suffix": suffixes} if suffixes else {}
    inputs = hf_inputs(folder, prompts, images, **kwargs)
    valid = inputs["attention_mask"].bool()
    # transformers numbers positions from the first column, padding or not; give it what generate would.
    positions = (valid.long().cumsum(1) - 1).clamp(min=0) + 1
    with torch.no_grad():
        ref = folder.model(**inputs, position_ids=positions).logits
        assert model.tokenizer is not None
        # the processor's own pixels (ours differ by ~1e-7, tested above): this compares the models alone
        pixels = list(inputs["pixel_values"])
        prefix = model.prefix([model.tokenizer.prompt_ids(p) for p in prompts], {"image": pixels})
        if suffixes:
            rows = [model.tokenizer.suffix_ids(s) for s in suffixes]
            width = max(map(len, rows))
            suffix = torch.tensor([r + [0] * (width - len(r)) for r in rows])
            suffix_valid = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows]).bool()
            # the processor pads the whole text on the left; rebuild that layout from ours to compare row by row
            logits = model(prefix, suffix, suffix_valid)
            ours_valid = torch.cat([prefix.valid, suffix_valid], dim=1)
            return max(float((logits[i][ours_valid[i]] - ref[i][valid[i]]).abs().max()) for i in range(len(prompts)))
        logits = model(prefix)
    assert logits.shape == ref.shape
    return float((logits - ref)[valid].abs().max())


def test_logits_match_transformers(tiny: Folder, loaded: Generator) -> None:
    assert compare_logits(tiny, loaded, PROMPTS[:3]) <= LOGIT_TOL


def test_logits_with_a_suffix_match_transformers(tiny: Folder, loaded: Generator) -> None:
    """The suffix is causal, the prefix full: token_type_ids in transformers, the prefix split here."""
    assert compare_logits(tiny, loaded, PROMPTS[:2], ["a cat on a mat", "the red car"]) <= LOGIT_TOL


def hf_generate(folder: Folder, prompts: list[str], images: list[Image.Image], **kwargs: Any) -> list[list[int]]:
    """transformers' generated ids per row, cut at the first EOS."""
    inputs = hf_inputs(folder, prompts, images)
    eos = kwargs.get("eos_token_id", folder.model.config.text_config.eos_token_id)
    with torch.no_grad():
        out = folder.model.generate(**inputs, **kwargs)[:, inputs["input_ids"].shape[1]:].tolist()
    return [row[: row.index(eos)] if eos in row else row for row in out]


def test_greedy_generation_matches_transformers(tiny: Folder, loaded: Generator) -> None:
    prompts, images = PROMPTS[:4], pictures(4)
    ours = loaded.generate_ids([loaded.tokenizer.prompt_ids(p) for p in prompts],  # type: ignore[union-attr]
                               {"image": images}, Decoding(max_new_tokens=10))
    theirs = hf_generate(tiny, prompts, images, max_new_tokens=10, do_sample=False)
    assert ours == theirs
    assert len({tuple(r) for r in ours}) > 1 and all(len(set(r)) > 2 for r in ours)  # not a degenerate repeat


def test_greedy_stops_at_eos_like_transformers(tiny: Folder, loaded: Generator) -> None:
    """With an EOS id that the rows reach at different steps, both stop each row there."""
    prompts, images = PROMPTS[:4], pictures(4)
    first = hf_generate(tiny, prompts, images, max_new_tokens=10, do_sample=False)
    eos = first[0][3]
    theirs = hf_generate(tiny, prompts, images, max_new_tokens=10, do_sample=False, eos_token_id=eos)
    saved = loaded.config.eos_id
    loaded.config.eos_id = eos
    try:
        ours = loaded.generate_ids([loaded.tokenizer.prompt_ids(p) for p in prompts],  # type: ignore[union-attr]
                                   {"image": images}, Decoding(max_new_tokens=10))
    finally:
        loaded.config.eos_id = saved
    assert ours == theirs
    assert len(ours[0]) == 3


def test_beam_search_matches_transformers(tiny: Folder, loaded: Generator) -> None:
    prompts, images = PROMPTS[:3], pictures(3)
    for beams, length_penalty in ((3, 1.0), (4, 0.5)):
        ours = loaded.generate_ids([loaded.tokenizer.prompt_ids(p) for p in prompts],  # type: ignore[union-attr]
                                   {"image": images}, Decoding(max_new_tokens=7, beams=beams,
                                                               length_penalty=length_penalty))
        theirs = hf_generate(tiny, prompts, images, max_new_tokens=7, num_beams=beams, do_sample=False,
                             length_penalty=length_penalty)
        assert ours == theirs


def test_beam_search_with_early_eos_matches_transformers(tiny: Folder, loaded: Generator) -> None:
    """Finished hypotheses compete with running beams: an EOS id that the beams reach early."""
    prompts, images = PROMPTS[:3], pictures(3)
    eos = hf_generate(tiny, prompts, images, max_new_tokens=7, num_beams=3, do_sample=False)[1][0]
    theirs = hf_generate(tiny, prompts, images, max_new_tokens=7, num_beams=3, do_sample=False, eos_token_id=eos)
    saved = loaded.config.eos_id
    loaded.config.eos_id = eos
    try:
        ours = loaded.generate_ids([loaded.tokenizer.prompt_ids(p) for p in prompts],  # type: ignore[union-attr]
                                   {"image": images}, Decoding(max_new_tokens=7, beams=3))
    finally:
        loaded.config.eos_id = saved
    assert ours == theirs
    assert any(len(row) < 7 for row in ours)  # some beam ended at EOS before the limit


def test_generate_text_matches_transformers_decode(tiny: Folder, loaded: Generator) -> None:
    images = pictures(2)
    text = loaded.generate(["caption en", "describe the sound"], image=images, max_new_tokens=6)
    inputs = hf_inputs(tiny, ["caption en", "describe the sound"], images)
    with torch.no_grad():
        out = tiny.model.generate(**inputs, max_new_tokens=6, do_sample=False)
    expected = tiny.processor.batch_decode(out[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
    assert text == expected


def test_paligemma_2_is_refused_by_name(tiny: Folder, tmp_path: Path) -> None:
    config = json.loads((tiny.path / "config.json").read_text())
    config["text_config"]["model_type"] = "gemma2"
    folder = tmp_path / "pg2"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "tokenizer.json").write_bytes((tiny.path / "tokenizer.json").read_bytes())
    with pytest.raises(CheckpointError, match=r"text_config\.model_type is 'gemma2'"):
        omnibind.load(folder)


def test_missing_tokenizer_is_named(tiny: Folder, tmp_path: Path) -> None:
    folder = tmp_path / "no_tokenizer"
    folder.mkdir()
    (folder / "config.json").write_bytes((tiny.path / "config.json").read_bytes())
    with pytest.raises(CheckpointError, match=r"tokenizer\.json: missing"):
        omnibind.load(folder)


@pytest.mark.slow
def test_paligemma_3b_widths_match_transformers(tmp_path: Path) -> None:
    """PaliGemma-3B's hidden sizes (one layer per tower, 256 image tokens) with a 2,048-token vocabulary: the
    full 257,216 × 2,048 embedding alone is 2.1 GB in float32 and would dominate time and memory."""
    folder = write_paligemma(tmp_path / "wide", WIDE_TEXT, WIDE_VISION, vocab_size=2048)
    model = omnibind.load(folder.path)
    assert isinstance(model, Generator) and model.config.decoder.width == 2048
    assert compare_logits(folder, model, ["What is on the mat?"]) <= LOGIT_TOL
    prompts, images = ["caption en", "Where is the cat standing?"], pictures(2)
    ours = model.generate_ids([model.tokenizer.prompt_ids(p) for p in prompts],  # type: ignore[union-attr]
                              {"image": images}, Decoding(max_new_tokens=4))
    assert ours == hf_generate(folder, prompts, images, max_new_tokens=4, do_sample=False)
    assert all(len(set(row)) > 1 for row in ours)  # not a degenerate repeat of one token
