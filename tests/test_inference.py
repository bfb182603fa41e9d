"""Zero-shot classification: prompt averaging, sigmoid probabilities and ranking."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from helpers import tiny_model
from omnibind.errors import InputError
from omnibind.inference import label_embeddings, zero_shot


def test_label_embeddings_average_templates(spiece_model: Path) -> None:
    model = tiny_model(spiece_model)
    templates = ["a photo of {}.", "a drawing of {}."]
    with torch.no_grad():
        got = label_embeddings(model, ["cat", "dog"], templates)
        cat = F.normalize(model.encode("text", ["a photo of cat.", "a drawing of cat."]).mean(0), dim=-1)
    assert got.shape == (2, 32)
    assert torch.allclose(got[0], cat, atol=1e-6)


def test_zero_shot_probabilities_are_sigmoid_of_logits(spiece_model: Path, media_files: dict[str, Path]) -> None:
    model = tiny_model(spiece_model)
    with torch.no_grad():
        model.logit_bias.fill_(0.0)
    result = zero_shot(model, [media_files["photo"], media_files["drawing"]], ["cat", "dog", "circle"])
    assert result.logits.shape == (2, 3)
    assert torch.allclose(result.probs, torch.sigmoid(result.logits))
    best = result.top(1)
    assert [b[0][0] for b in best] == [result.labels[i] for i in result.logits.argmax(-1).tolist()]


def test_audio_zero_shot_and_bad_labels(spiece_model: Path, media_files: dict[str, Path]) -> None:
    model = tiny_model(spiece_model)
    assert zero_shot(model, media_files["tone"], ["piano", "bird"], modality="audio").probs.shape == (1, 2)
    with pytest.raises(InputError, match="labels"):
        zero_shot(model, media_files["tone"], [], modality="audio")
    with pytest.raises(InputError, match="placeholder"):
        zero_shot(model, media_files["tone"], ["x"], modality="audio", templates=["no slot"])
