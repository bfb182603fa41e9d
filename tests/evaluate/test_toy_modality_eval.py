"""Evaluation of a model with a tower for a modality defined only in tests/ (depth maps): examples loaded
from packed shards, retrieval both ways and zero-shot at their chance levels, depth media saved for the
report by the modality itself and shown as pictures; embedding and zero-shot on .npy files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import omnibind
import toy_modality
from helpers import TINY_TOWER
from omnibind.data.pack import pack
from omnibind.embed import plan_items
from omnibind.evaluate.data import load_examples
from omnibind.evaluate.report import write_report
from omnibind.evaluate.run import evaluate_splits
from omnibind.inference import default_templates, zero_shot
from omnibind.preprocess.text import Tokenizer
from toy_data import CLASSES, write_depth_manifest


@pytest.fixture(scope="module")
def depth_model(spiece_model: Path) -> omnibind.OmniBind:
    torch.manual_seed(0)
    return omnibind.create("Ti/16", modalities=("text", toy_modality.NAME), tokenizer=spiece_model, embed_dim=32,
                           text=dict(TINY_TOWER, vocab_size=Tokenizer(spiece_model).vocab_size, max_len=16),
                           depth=dict(TINY_TOWER, size=16, patch_size=4)).eval()


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("depth_eval")
    manifest, _ = write_depth_manifest(folder / "files")
    return pack(manifest, folder / "shards", shard_size=5, show_progress=False).pattern


def test_examples_from_shards_carry_depth_bytes_and_labels(shards: str) -> None:
    examples = {e.key: e for e in load_examples(shards)}
    assert len(examples) == 12 and set(examples["d00"].inputs) == {"depth", "text"}
    assert isinstance(examples["d00"].inputs["depth"], bytes) and examples["d00"].label == CLASSES[0]
    assert set(examples["d04"].inputs) == {"depth"} and set(examples["d05"].inputs) == {"text"}


def test_retrieval_and_zero_shot_with_a_depth_tower(tmp_path: Path, shards: str, depth_model) -> None:
    results = evaluate_splits(depth_model, {"test": load_examples(shards)}, tmp_path)
    metrics = results["test"]
    # 10 depth maps (all distinct), 10 captions (all distinct); 8 examples pair them
    for a, b in (("depth", "text"), ("text", "depth")):
        prefix = f"retrieval/{a}->{b}"
        assert 0 <= metrics[f"{prefix}/R@1"] <= 1 and metrics[f"{prefix}/median_rank"] >= 1
        assert metrics[f"{prefix}/queries"] == 8 and metrics[f"{prefix}/items"] == 10
        assert metrics[f"{prefix}/R@1_chance"] == pytest.approx(1 / 10)
        assert metrics[f"{prefix}/R@5_chance"] == pytest.approx(5 / 10)
    assert metrics["depth_zeroshot/top1_chance"] == pytest.approx(1 / len(CLASSES))
    assert metrics["depth_zeroshot/examples"] == 10 and 0 <= metrics["depth_zeroshot/top1"] <= 1

    saved = json.loads((tmp_path / "eval" / "test.json").read_text())
    depth_items = [item for example in saved["examples"] for item in [example["query"], *example["results"]]
                   if item["modality"] == "depth"]
    assert depth_items and {e["direction"] for e in saved["examples"]} == {"depth->text", "text->depth"}
    for item in depth_items:
        assert item["media"].endswith("-depth.png") and item["media_type"] == "image/png"
        assert (tmp_path / "eval" / item["media"]).read_bytes().startswith(b"\x89PNG")
    _, page = write_report(tmp_path)
    assert f'<img src="eval/{depth_items[0]["media"]}"' in page.read_text()


def test_zero_shot_and_embed_plan_read_depth_from_the_registry(tmp_path: Path, depth_model) -> None:
    path = tmp_path / "scan.npy"
    path.write_bytes(toy_modality.npy_bytes(toy_modality.depth_map(2, 0)))
    assert default_templates("depth") == ("a depth map of {}.",)
    result = zero_shot(depth_model, [path], list(CLASSES), modality="depth")
    assert result.probs.shape == (1, len(CLASSES))
    assert [(item.modality, item.source) for item in plan_items([path], ["a wall"])] == \
        [("depth", str(path)), ("text", "a wall")]
