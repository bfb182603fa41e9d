"""OmniBind: towers keyed by modality, t' and b at their SigLIP init, encode of raw and tensor inputs."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

import omnibind
from helpers import tiny_model
from omnibind.errors import InputError


def test_init_values_and_towers(spiece_model: Path) -> None:
    model = tiny_model(spiece_model)
    assert model.modalities == ("image", "text", "audio")
    assert isinstance(model.towers, torch.nn.ModuleDict)
    assert model.logit_scale.item() == pytest.approx(math.log(10))
    assert model.logit_bias.item() == pytest.approx(-10)


def test_encode_raw_inputs_equals_tensor_inputs(spiece_model: Path, media_files: dict[str, Path]) -> None:
    model = tiny_model(spiece_model)
    with torch.no_grad():
        for modality, sources in (("image", [media_files["photo"], media_files["drawing"]]),
                                  ("audio", [media_files["tone"], media_files["chirp"]]),
                                  ("text", ["a red circle", "an astronaut"])):
            raw = model.encode(modality, sources)
            ready = model.encode(modality, model.preprocess(modality, sources))
            assert raw.shape == (2, 32)
            assert torch.allclose(raw.norm(dim=-1), torch.ones(2), atol=1e-5)
            assert torch.equal(raw, ready)


def test_single_input_and_forward_batch(spiece_model: Path, media_files: dict[str, Path]) -> None:
    model = tiny_model(spiece_model)
    with torch.no_grad():
        one = model.encode("image", media_files["drawing"])
        batch = {"image": model.preprocess("image", [media_files["drawing"]]), "text": model.preprocess("text", "x")}
        out = model(batch)
    assert one.shape == (1, 32) and set(out) == {"image", "text"}
    assert torch.allclose(out["image"], one, atol=1e-6)


def test_logits_formula(spiece_model: Path) -> None:
    model = tiny_model(spiece_model)
    x, y = torch.nn.functional.normalize(torch.randn(3, 32), dim=-1), torch.nn.functional.normalize(
        torch.randn(4, 32), dim=-1)
    assert torch.allclose(model.logits(x, y), 10.0 * x @ y.T - 10.0, atol=1e-5)


def test_missing_tower_and_missing_tokenizer_are_clear(spiece_model: Path) -> None:
    model = omnibind.create("Ti/16", modalities=("image", "text"), image=dict(depth=1), text=dict(depth=1))
    with pytest.raises(InputError, match="one of image, text"):
        model.encode("audio", torch.zeros(1, 128, 1000))
    with pytest.raises(InputError, match="no preprocessor"):
        model.encode("text", ["a cat"])


def test_every_named_size_builds_configs_for_all_towers() -> None:
    for variant in ("Ti/16", "S/16", "B/16", "L/16", "So400m/14"):
        config = omnibind.model_config(variant)
        assert set(config.towers) == {"image", "text", "audio"}
        assert config.towers["image"].patch_size == int(variant.split("/")[1])
