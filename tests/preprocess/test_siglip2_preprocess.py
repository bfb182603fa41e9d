"""SigLIP 2 preprocessing equals transformers': NaFlex patches, masks and shapes (Siglip2ImageProcessor, PIL
backend) and bilinear fixed-resolution pixels (SiglipImageProcessor) within 1e-5 on real photos in every mode; Gemma
token ids identical to Siglip2Tokenizer's; clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from omnibind.errors import InputError
from omnibind.models.naflex import pack, unpack
from omnibind.preprocess.naflex import NaFlexPreprocessor, ResampledImagePreprocessor, target_size
from omnibind.preprocess.text import GemmaTokenizer
from siglip2_fixtures import gemma_tokenizer

transformers = pytest.importorskip("transformers")
siglip2_pil = pytest.importorskip("transformers.models.siglip2.image_processing_pil_siglip2")
skimage_data = Path(pytest.importorskip("skimage").__file__).parent / "data"
# Real photos and drawings in every mode: RGB, grey, RGBA, palette GIF, JPEG; square, wide and tall.
REAL_IMAGES = ["astronaut.png", "camera.png", "logo.png", "rocket.jpg", "coffee.png",
               "no_time_for_that_tiny.gif", "hubble_deep_field.jpg", "chessboard_GRAY.png"]
TOL = 1e-5  # max abs difference against transformers, float32


@pytest.mark.parametrize("name", REAL_IMAGES)
@pytest.mark.parametrize("patch, limit", [(16, 256), (14, 100)])
def test_naflex_matches_transformers_processor(name: str, patch: int, limit: int) -> None:
    # transformers' NaFlex processor leaves grey, palette and RGBA pictures as they are (and then fails) unless
    # told to convert them; omnibind always converts, as transformers' do_convert_rgb does (alpha over white).
    theirs = transformers.Siglip2ImageProcessorPil(patch_size=patch, max_num_patches=limit, do_convert_rgb=True)(
        Image.open(skimage_data / name), return_tensors="pt")
    packed = NaFlexPreprocessor(patch, limit)(skimage_data / name)
    assert packed.shape == (limit, 3 * patch * patch + 2)
    patches, shapes, mask = unpack(packed[None])
    assert torch.equal(shapes, theirs["spatial_shapes"])
    assert torch.equal(mask.long(), theirs["pixel_attention_mask"])
    assert (patches - theirs["pixel_values"]).abs().max() < TOL


def test_naflex_grid_sizes_match_transformers_on_many_shapes() -> None:
    """Every (height, width) from 1 to 600 px on a coarse grid, two patch sizes and three patch budgets."""
    sides = [1, 2, 7, 13, 16, 31, 64, 100, 223, 224, 255, 384, 511, 600]
    for patch, limit in [(16, 256), (14, 729), (16, 64)]:
        for height in sides:
            for width in sides:
                want = siglip2_pil.get_image_size_for_max_num_patches(height, width, patch, limit)
                assert target_size(height, width, patch, limit) == want, (height, width, patch, limit)


def test_naflex_accepts_paths_bytes_and_pil_alike() -> None:
    path = skimage_data / "rocket.jpg"
    processor = NaFlexPreprocessor(16, 64)
    from_path = processor(path)
    assert torch.equal(processor(path.read_bytes()), from_path)
    assert torch.equal(processor(Image.open(path)), from_path)
    assert processor.batch([path, skimage_data / "camera.png"]).shape == (2, 64, 770)
    assert processor.input_spec.shape == (64, 770)


@pytest.mark.parametrize("name", REAL_IMAGES)
def test_bilinear_fixed_resolution_matches_transformers(name: str) -> None:
    """SigLIP 2's fixed-resolution checkpoints resize bilinearly (preprocessor_config.json resample 2)."""
    theirs = transformers.SiglipImageProcessorPil(size={"height": 224, "width": 224}, resample=2)(
        Image.open(skimage_data / name), return_tensors="np")["pixel_values"][0]
    ours = ResampledImagePreprocessor(224, resample="bilinear")(skimage_data / name)
    assert np.abs(ours.numpy() - theirs).max() < TOL


def test_pack_and_unpack() -> None:
    patches = torch.arange(6 * 4, dtype=torch.float32).reshape(6, 4)
    packed = pack(patches, 2, 3, 8)
    got, shapes, mask = unpack(packed.to(torch.bfloat16)[None])  # the unary shape survives bfloat16
    assert shapes.tolist() == [[2, 3]] and mask.tolist() == [[True] * 6 + [False] * 2]
    assert torch.equal(got[0, :6].float(), patches) and (got[0, 6:] == 0).all()
    assert unpack(torch.zeros(1, 8, 6))[1].tolist() == [[1, 1]]  # a zero-filled absent input reads as 1 × 1
    with pytest.raises(ValueError, match="5 patches for a 2×3 grid"):
        pack(patches[:5], 2, 3, 8)
    with pytest.raises(InputError, match="resample"):
        NaFlexPreprocessor(16, 64, resample="cubic")


@pytest.fixture(scope="module")
def gemma(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return gemma_tokenizer(tmp_path_factory.mktemp("gemma"))


TEXTS = [
    "A photo of a CAT.", "a photo of a cat.", "  Leading and   inner   spaces ", "tabs\tand\nnewlines",
    "ÉCOLE, Straße and ÜNÏCÖDÉ", "digits 0123456789 and 3.14", "emoji 🙂 falls back to bytes",
    "special <eos> and <pad> strings", "İstanbul ΣΊΣΥΦΟΣ",  # Unicode lower-casing beyond ASCII
    "the quick brown fox jumps over the lazy dog " * 10,
]


def test_gemma_token_ids_identical_to_transformers(gemma: Path) -> None:
    theirs = transformers.Siglip2Tokenizer.from_pretrained(gemma)(
        TEXTS, padding="max_length", max_length=64, truncation=True, return_tensors="pt")["input_ids"]
    ours = GemmaTokenizer(gemma / "tokenizer.json", 64)
    assert torch.equal(ours(TEXTS), theirs)
    assert torch.equal(ours.batch(TEXTS[:2]), theirs[:2]) and torch.equal(ours.one(TEXTS[0]), theirs[0])
    assert torch.equal(theirs[0], theirs[1])  # lower-cased
    assert (theirs[-1] != 0).all() and theirs[-1, -1] == 1  # truncated to 63 pieces, then <eos>
    cased = GemmaTokenizer(gemma / "tokenizer.json", 64, lower_case=False)
    assert not torch.equal(cased(TEXTS[0]), cased(TEXTS[1]))


def test_gemma_tokenizer_errors(gemma: Path, tmp_path: Path) -> None:
    tokenizer = GemmaTokenizer(gemma / "tokenizer.json", 16)
    with pytest.raises(InputError, match="empty text"):
        tokenizer(["fine", " "])
    with pytest.raises(InputError, match="no texts given"):
        tokenizer([])
    with pytest.raises(InputError, match="tokenizer file not found"):
        GemmaTokenizer(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(InputError, match="cannot load tokenizer"):
        GemmaTokenizer(broken)
    data = json.loads((gemma / "tokenizer.json").read_text())
    data["added_tokens"] = [t for t in data["added_tokens"] if t["content"] != "<eos>"]
    data["model"]["vocab"].pop("<eos>")
    (tmp_path / "no_eos.json").write_text(json.dumps(data))
    with pytest.raises(InputError, match="no '<eos>' token"):
        GemmaTokenizer(tmp_path / "no_eos.json")
