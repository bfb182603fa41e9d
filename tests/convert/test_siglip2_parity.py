"""Parity with transformers for SigLIP 2: random-init checkpoints saved by transformers (fixed resolution and
NaFlex, a tiny shape and the real widths with 1–2 layers) load through omnibind.load and give the same
preprocessed inputs (1e-5), token ids (identical), image and text embeddings and logits (1e-4, fp32, max abs)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import omnibind
from omnibind.checkpoint import read_json
from omnibind.convert import registry, siglip2
from omnibind.convert.siglip import GEMMA_VOCAB
from omnibind.errors import CheckpointError
from omnibind.models.naflex import unpack
from omnibind.preprocess.naflex import NaFlexPreprocessor
from siglip2_fixtures import gemma_tokenizer, write_fixed, write_naflex

transformers = pytest.importorskip("transformers")

TOL = 1e-4  # embeddings and logits, fp32, max abs difference
PIXEL_TOL = 1e-5  # preprocessed pixels
TEXTS = ["A photo of a CAT.", "Two dogs playing in the PARK at night", "ÉCOLE straße 42",
         "the quick brown fox jumps over the lazy dog " * 8]  # the last one is truncated to 63 pieces + EOS
TINY_TEXT = dict(hidden_size=32, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2)
TINY_VISION = dict(hidden_size=32, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2)


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return gemma_tokenizer(tmp_path_factory.mktemp("gemma"))


def pictures() -> list[Image.Image]:
    """Real-looking pictures of several aspect ratios: scikit-image's astronaut and rocket, and noise."""
    data = Path(pytest.importorskip("skimage").__file__).parent / "data"
    rng = np.random.default_rng(0)
    noise = [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for h, w in [(37, 91), (300, 20)]]
    return [Image.open(data / "astronaut.png").convert("RGB"), Image.open(data / "rocket.jpg").convert("RGB"), *noise]


def hf_text_ids(folder: Path, texts: list[str]) -> torch.Tensor:
    """Ids from transformers' Siglip2Tokenizer as Siglip2Processor calls it."""
    tok = transformers.Siglip2Tokenizer.from_pretrained(folder)
    return tok(texts, padding="max_length", max_length=64, truncation=True, return_tensors="pt")["input_ids"]


def check_text(ours: omnibind.OmniBind, folder: Path, hf_model: torch.nn.Module) -> torch.Tensor:
    """Token ids identical to transformers' (also GemmaTokenizer on lower-cased text), embeddings within TOL."""
    ids = hf_text_ids(folder, TEXTS)
    gemma = transformers.GemmaTokenizer.from_pretrained(folder)
    lowered = gemma([t.lower() for t in TEXTS], padding="max_length", max_length=64, truncation=True,
                    return_tensors="pt")["input_ids"]
    assert torch.equal(ours.preprocess("text", TEXTS), ids)
    assert torch.equal(ids, lowered)
    assert (ids[-1] != 0).all() and ids[-1, -1] == 1  # truncated: 63 pieces and the sticky EOS
    with torch.no_grad():
        want = F.normalize(hf_model.get_text_features(input_ids=ids).pooler_output, dim=-1)
        got = ours.encode("text", TEXTS)
    assert (got - want).abs().max() < TOL
    return got


def test_fixed_resolution_tiny(tmp_path: Path, tokenizer: Path) -> None:
    hf = write_fixed(tmp_path, tokenizer, TINY_TEXT, dict(TINY_VISION, image_size=32, patch_size=8),
                     vocab=GEMMA_VOCAB)
    ours = omnibind.load(tmp_path)
    assert "SigLIP 2, fixed" in registry.find(read_json(tmp_path / "config.json", True), tmp_path).name
    assert ours.config.towers["image"].resample == "bilinear" and ours.config.towers["text"].kind == "siglip2"
    images = pictures()
    processor = transformers.SiglipImageProcessorPil.from_pretrained(tmp_path)
    pixels = processor(images, return_tensors="pt")["pixel_values"]
    assert (ours.preprocess("image", images) - pixels).abs().max() < PIXEL_TOL
    text = check_text(ours, tmp_path, hf)
    with torch.no_grad():
        out = hf(input_ids=hf_text_ids(tmp_path, TEXTS), pixel_values=pixels)
        image = ours.encode("image", images)
    assert (image - out.image_embeds).abs().max() < TOL
    assert (ours.logits(image, text) - out.logits_per_image).abs().max() < TOL
    assert out.logits_per_image.std() > 0.01  # the comparison is not between constants


def naflex_inputs(folder: Path, images: list[Image.Image], **kwargs: int) -> transformers.BatchFeature:
    return transformers.Siglip2ImageProcessorPil.from_pretrained(folder)(images, return_tensors="pt", **kwargs)


def check_naflex_images(ours: omnibind.OmniBind, hf: torch.nn.Module, inputs: dict, packed: torch.Tensor) -> None:
    """The packed batch unpacks to transformers' patches, mask and shapes; embeddings agree within TOL."""
    patches, shapes, mask = unpack(packed)
    assert torch.equal(shapes, inputs["spatial_shapes"]) and torch.equal(mask.long(), inputs["pixel_attention_mask"])
    assert (patches - inputs["pixel_values"]).abs().max() < PIXEL_TOL
    with torch.no_grad():
        want = F.normalize(hf.get_image_features(**inputs).pooler_output, dim=-1)
        got = ours.encode("image", packed)
    assert (got - want).abs().max() < TOL
    assert (want @ want.T).std() > 0.01


def test_naflex_tiny(tmp_path: Path, tokenizer: Path) -> None:
    hf = write_naflex(tmp_path, tokenizer, TINY_TEXT, dict(TINY_VISION, patch_size=4, num_patches=16), 64)
    ours = omnibind.load(tmp_path)
    assert "SigLIP 2 NaFlex" in registry.find(read_json(tmp_path / "config.json", True), tmp_path).name
    image_config = ours.config.towers["image"]
    assert (image_config.max_num_patches, image_config.image_size, image_config.resample) == (64, 16, "bilinear")
    images = pictures()
    inputs = naflex_inputs(tmp_path, images)
    assert len(set(map(tuple, inputs["spatial_shapes"].tolist()))) == len(images)  # every aspect ratio differs
    packed = ours.preprocess("image", images)
    check_naflex_images(ours, hf, inputs, packed)
    text = check_text(ours, tmp_path, hf)
    with torch.no_grad():
        out = hf(input_ids=hf_text_ids(tmp_path, TEXTS), **inputs)
    assert (ours.logits(ours.encode("image", images), text) - out.logits_per_image).abs().max() < TOL
    # The token path (tokens(), then head()) pools the same real patches as forward().
    tower = ours.towers["image"]
    with torch.no_grad():
        tokens = tower.tokens(packed)
        assert (F.normalize(tower.head(tokens), dim=-1) - out.image_embeds).abs().max() < TOL
    assert (tokens[~unpack(packed)[2]] == 0).all()


@pytest.fixture(scope="module")
def naflex_folder(tmp_path_factory: pytest.TempPathFactory, tokenizer: Path) -> Path:
    """A tiny NaFlex checkpoint and, beside it, the test pictures saved as PNG files."""
    folder = tmp_path_factory.mktemp("naflex")
    write_naflex(folder / "hf", tokenizer, TINY_TEXT, dict(TINY_VISION, patch_size=4, num_patches=16), 64)
    (folder / "pictures").mkdir()
    for name, picture in zip(LABELS, pictures(), strict=True):
        picture.save(folder / "pictures" / f"{name}.png")
    return folder


LABELS = ["astronaut", "rocket", "wide noise", "tall noise"]


def test_naflex_encode_zero_shot_and_round_trip(naflex_folder: Path, tmp_path: Path) -> None:
    """encode on paths, zero_shot, and save → load of the omnibind checkpoint (tokenizer.json carried along)."""
    model = omnibind.load(naflex_folder / "hf")
    paths = [naflex_folder / "pictures" / f"{name}.png" for name in LABELS]
    result = omnibind.zero_shot(model, paths, LABELS)
    assert result.probs.shape == (4, 4) and torch.isfinite(result.logits).all()
    images = model.encode("image", paths)
    expected = model.logits(images, omnibind.inference.label_embeddings(model, LABELS, ("a photo of {}.",)))
    assert torch.allclose(result.logits, expected, atol=1e-5)
    saved = omnibind.save(model, tmp_path / "ours")
    assert sorted(p.name for p in saved.iterdir()) == ["config.json", "model.safetensors", "tokenizer.json"]
    again = omnibind.load(saved)
    assert again.config == model.config
    assert torch.equal(again.encode("image", paths), images)
    assert torch.equal(again.preprocess("text", TEXTS), model.preprocess("text", TEXTS))


def test_naflex_evaluation_and_search(naflex_folder: Path, tmp_path: Path) -> None:
    """The evaluators and the search index take a NaFlex model like any other."""
    from omnibind.evaluate.examples import EvalExample
    from omnibind.evaluate.run import evaluate_splits
    from omnibind.search.index import SearchIndex
    from omnibind.search.update import update_index

    model = omnibind.load(naflex_folder / "hf")
    paths = [naflex_folder / "pictures" / f"{name}.png" for name in LABELS]
    examples = [EvalExample(name, {"image": path, "text": f"a photo of {name}."}, label=name)
                for name, path in zip(LABELS, paths, strict=True)]
    metrics = evaluate_splits(model, {"test": examples})["test"]
    with torch.no_grad():
        images = model.encode("image", paths)
        captions = model.encode("text", [e.inputs["text"] for e in examples])
    hits_at_1 = (images @ captions.T).argmax(dim=1).eq(torch.arange(4)).float().mean().item()
    assert metrics["retrieval/image->text/R@1"] == pytest.approx(hits_at_1)
    assert metrics["image_zeroshot/top1"] == pytest.approx(hits_at_1)  # the captions are the label prompts
    update_index(tmp_path / "index", naflex_folder / "pictures", model, naflex_folder / "hf")
    index = SearchIndex(tmp_path / "index")
    query = images[1].numpy()
    hits = index.search(query, k=4)
    assert len(hits) == 4 and hits[0].to_dict()["path"].endswith("rocket.png")
    index.close()


def test_kinds_do_not_steal_each_others_folders() -> None:
    v1 = {"model_type": "siglip", "text_config": {"vocab_size": 32000}}
    v1_default = {"model_type": "siglip", "text_config": {}}
    fixed = {"model_type": "siglip", "text_config": {"vocab_size": 256000}}
    naflex = {"model_type": "siglip2", "text_config": {}, "vision_config": {}}
    for config, name in [(v1, "SigLIP (model_type"), (v1_default, "SigLIP (model_type"),
                         (fixed, "SigLIP 2, fixed"), (naflex, "SigLIP 2 NaFlex")]:
        matching = [kind.name for kind in registry.kinds() if kind.matches(config)]
        assert len(matching) == 1 and name in matching[0], (config, matching)


def test_clear_errors(tmp_path: Path, tokenizer: Path) -> None:
    write_naflex(tmp_path, tokenizer, TINY_TEXT, dict(TINY_VISION, patch_size=4, num_patches=16), 64)
    (tmp_path / "tokenizer.json").unlink()
    with pytest.raises(CheckpointError, match=r"tokenizer\.json: missing .*Gemma tokenizer"):
        omnibind.load(tmp_path)
    config = {"model_type": "siglip2", "vision_config": {"num_patches": 20, "patch_size": 4}}
    with pytest.raises(CheckpointError, match=r"num_patches is 20 .*square"):
        siglip2.config_from_hf(config, {}, (1, 0))
    with pytest.raises(CheckpointError, match="resample is 7"):
        siglip2.config_from_hf({"model_type": "siglip2"}, {"resample": 7}, (1, 0))
    with pytest.raises(CheckpointError, match="max_num_patches is 0"):
        siglip2.config_from_hf({"model_type": "siglip2"}, {"max_num_patches": 0}, (1, 0))


# Real widths with few layers: base-patch16 and so400m-patch14/16. The fixed-resolution ones have a 1,024-token text
# vocabulary and call the SigLIP 2 loader directly: the 256k Gemma vocabulary that `matches` keys on (checked at the
# tiny shape above) would make each checkpoint 0.8–1.2 GB.
BASE = dict(hidden_size=768, intermediate_size=3072, num_attention_heads=12, num_hidden_layers=2)
SO400M = dict(hidden_size=1152, intermediate_size=4304, num_attention_heads=16, num_hidden_layers=1)


@pytest.mark.slow
@pytest.mark.parametrize("shape, patch", [(BASE, 16), (SO400M, 16)], ids=["base-patch16-naflex",
                                                                          "so400m-patch16-naflex"])
def test_naflex_real_widths(tmp_path: Path, tokenizer: Path, shape: dict, patch: int) -> None:
    hf = write_naflex(tmp_path, tokenizer, shape, dict(shape, patch_size=patch, num_patches=256), 256)
    ours = omnibind.load(tmp_path)
    images = pictures()[:3]
    inputs = naflex_inputs(tmp_path, images, max_num_patches=128)  # fewer patches than trained: resized grid
    check_naflex_images(ours, hf, inputs, NaFlexPreprocessor(patch, 128).batch(images))
    check_text(ours, tmp_path, hf)


@pytest.mark.slow
@pytest.mark.parametrize("shape, size, patch", [(BASE, 224, 16), (SO400M, 384, 14)],
                         ids=["base-patch16-224", "so400m-patch14-384"])
def test_fixed_resolution_real_widths(tmp_path: Path, tokenizer: Path, shape: dict, size: int, patch: int) -> None:
    hf = write_fixed(tmp_path, tokenizer, shape, dict(shape, image_size=size, patch_size=patch), vocab=1024)
    ours = siglip2.load(tmp_path, hf.config.to_dict())
    images = pictures()[:2]
    pixels = transformers.SiglipImageProcessorPil.from_pretrained(tmp_path)(images, return_tensors="pt")["pixel_values"]
    assert (ours.preprocess("image", images) - pixels).abs().max() < PIXEL_TOL
    with torch.no_grad():
        want = F.normalize(hf.get_image_features(pixel_values=pixels).pooler_output, dim=-1)
        got = ours.encode("image", images)
    assert (got - want).abs().max() < TOL
    check_text(ours, tmp_path, hf)
