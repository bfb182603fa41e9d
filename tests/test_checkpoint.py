"""Checkpoints: round trip, atomic writes, hub ids through huggingface_hub's cache, clear errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

import omnibind
from omnibind.checkpoint import atomic_write
from omnibind.errors import CheckpointError


def test_round_trip_keeps_weights_config_and_tokenizer(tiny_checkpoint: Path, spiece_model: Path) -> None:
    from helpers import tiny_model

    original = tiny_model(spiece_model)
    loaded = omnibind.load(tiny_checkpoint)
    assert loaded.config == original.config
    for (name, a), (_, b) in zip(original.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    assert (tiny_checkpoint / "spiece.model").read_bytes() == spiece_model.read_bytes()
    assert torch.equal(loaded.preprocess("text", ["a cat"]), original.preprocess("text", ["a cat"]))


def test_load_to_dtype(tiny_checkpoint: Path) -> None:
    model = omnibind.load(tiny_checkpoint, dtype=torch.bfloat16)
    assert model.logit_scale.dtype == torch.bfloat16
    assert model.encode("text", ["a dog"]).dtype == torch.bfloat16


def test_atomic_write_keeps_old_file_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "config.json"
    target.write_text("old")

    def fail(path: Path) -> None:
        path.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(target, fail)
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]


@pytest.mark.parametrize("missing", ["config.json", "model.safetensors"])
def test_missing_file_is_named(tiny_checkpoint: Path, missing: str) -> None:
    (tiny_checkpoint / missing).unlink()
    with pytest.raises(CheckpointError, match=missing):
        omnibind.load(tiny_checkpoint)


def test_truncated_weights(tiny_checkpoint: Path) -> None:
    weights = tiny_checkpoint / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match=r"model\.safetensors.*cannot read"):
        omnibind.load(tiny_checkpoint)


def test_bad_json_and_unknown_kind(tiny_checkpoint: Path) -> None:
    config = tiny_checkpoint / "config.json"
    config.write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        omnibind.load(tiny_checkpoint)
    config.write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(CheckpointError, match="unknown checkpoint kind"):
        omnibind.load(tiny_checkpoint)


def test_weights_that_do_not_fit_the_config(tiny_checkpoint: Path) -> None:
    config = tiny_checkpoint / "config.json"
    meta = json.loads(config.read_text())
    meta["model"]["towers"]["image"]["depth"] = 2
    config.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="missing"):
        omnibind.load(tiny_checkpoint)


def test_pickle_checkpoints_are_never_loaded(tiny_checkpoint: Path) -> None:
    weights = tiny_checkpoint / "model.safetensors"
    torch.save({"x": torch.zeros(1)}, tiny_checkpoint / "pytorch_model.bin")
    weights.unlink()
    with pytest.raises(CheckpointError, match=r"model\.safetensors"):
        omnibind.load(tiny_checkpoint)


def test_not_a_folder_or_hub_id(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no such folder"):
        omnibind.load(tmp_path / "nope")
    file = tmp_path / "file.txt"
    file.write_text("x")
    with pytest.raises(CheckpointError, match="is a file"):
        omnibind.load(file)


def _siglip_folder(folder: Path, spiece: Path) -> Path:
    transformers = pytest.importorskip("transformers")
    config = transformers.SiglipConfig(
        text_config=dict(hidden_size=32, intermediate_size=64, num_attention_heads=4, num_hidden_layers=1,
                         vocab_size=64, max_position_embeddings=16),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_attention_heads=4, num_hidden_layers=1,
                           image_size=32, patch_size=8),
    )
    transformers.SiglipModel(config).save_pretrained(folder)
    shutil.copy(spiece, folder / "spiece.model")
    return folder


def test_siglip_folder_without_tokenizer_is_named(tmp_path: Path, spiece_model: Path) -> None:
    folder = _siglip_folder(tmp_path / "siglip", spiece_model)
    (folder / "spiece.model").unlink()
    with pytest.raises(CheckpointError, match=r"spiece\.model.*missing"):
        omnibind.load(folder)


def test_hub_id_resolves_through_the_hub_cache(tmp_path: Path, spiece_model: Path, monkeypatch) -> None:
    """A hub id goes through huggingface_hub's snapshot_download; offline, it is served from the cache
    laid out exactly as the hub client writes it (models--org--name/snapshots/<rev>, refs/main)."""
    revision = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--acme--tiny-siglip"
    _siglip_folder(repo / "snapshots" / revision, spiece_model)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    import huggingface_hub.constants as hub_constants

    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    model = omnibind.load("acme/tiny-siglip")
    assert model.modalities == ("image", "text")
    assert model.encode("text", ["a photo of a cat"]).shape == (1, 32)
    with pytest.raises(CheckpointError, match="acme/absent"):
        omnibind.load("acme/absent")
