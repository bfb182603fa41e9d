"""Parity with transformers: random-init SiglipModels saved with save_pretrained, loaded by omnibind,
give the same image embeddings, text embeddings and logits within 1e-4 (fp32, max abs)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

import omnibind

transformers = pytest.importorskip("transformers")

TOL = 1e-4  # fp32, max abs difference

SHAPES = {
    # base-patch16-224 with depth cut to 2 per tower
    "base-patch16-224": dict(
        text=dict(hidden_size=768, intermediate_size=3072, num_attention_heads=12, num_hidden_layers=2),
        vision=dict(hidden_size=768, intermediate_size=3072, num_attention_heads=12, num_hidden_layers=2,
                    image_size=224, patch_size=16),
    ),
    # so400m-patch14-384 with depth cut to 1 per tower
    "so400m-patch14-384": dict(
        text=dict(hidden_size=1152, intermediate_size=4304, num_attention_heads=16, num_hidden_layers=1),
        vision=dict(hidden_size=1152, intermediate_size=4304, num_attention_heads=16, num_hidden_layers=1,
                    image_size=384, patch_size=14),
    ),
}


def make_hf_checkpoint(folder: Path, shape: dict, spiece: Path) -> transformers.SiglipModel:
    """A random-init SiglipModel (non-trivial scale and bias) saved as transformers would."""
    torch.manual_seed(0)
    config = transformers.SiglipConfig(
        text_config=dict(vocab_size=32000, max_position_embeddings=64, **shape["text"]),
        vision_config=shape["vision"],
    )
    model = transformers.SiglipModel(config).eval()
    with torch.no_grad():
        model.logit_scale.fill_(2.3)
        model.logit_bias.fill_(-4.0)
    model.save_pretrained(folder)
    shutil.copy(spiece, folder / "spiece.model")
    return model


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SHAPES))
def test_embeddings_and_logits_match_transformers(name: str, tmp_path: Path, spiece_model: Path) -> None:
    hf = make_hf_checkpoint(tmp_path, SHAPES[name], spiece_model)
    ours = omnibind.load(tmp_path)
    size = SHAPES[name]["vision"]["image_size"]
    torch.manual_seed(1)
    pixels = torch.rand(2, 3, size, size) * 2 - 1
    ids = torch.randint(0, 32000, (3, 64))
    with torch.no_grad():
        out = hf(input_ids=ids, pixel_values=pixels)
        image = ours.encode("image", pixels)
        text = ours.encode("text", ids)
        logits = ours.logits(image, text)
    assert (image - out.image_embeds).abs().max() < TOL
    assert (text - out.text_embeds).abs().max() < TOL
    assert (logits - out.logits_per_image).abs().max() < TOL
    assert logits.std() > 0.01  # the comparison is not between constants

