"""Adding an evaluator from a test file alone: a factory registered under a name runs on every split
after the built-ins, its metrics land beside theirs, and a name is taken once."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest
import torch

import omnibind
from helpers import TINY_TOWER
from omnibind.errors import InputError
from omnibind.evaluate.examples import EvalExample, embed_sources
from omnibind.evaluate.registry import evaluator_names, register_evaluator, unregister_evaluator
from omnibind.evaluate.run import evaluate_splits
from omnibind.preprocess.text import Tokenizer


class PairAlignment:
    """Mean cosine similarity of each example's image and text: how well matching pairs agree."""

    def __init__(self, examples: Sequence[EvalExample]) -> None:
        self.pairs = [e for e in examples if "image" in e.inputs and "text" in e.inputs]

    def run(self, model: omnibind.OmniBind) -> dict[str, float]:
        images = embed_sources(model, "image", [e.inputs["image"] for e in self.pairs])
        texts = embed_sources(model, "text", [e.inputs["text"] for e in self.pairs])
        return {"alignment/image-text/mean_cosine": float((images * texts).sum(dim=1).mean()),
                "alignment/image-text/pairs": float(len(self.pairs))}


def alignment(examples: Sequence[EvalExample], model: omnibind.OmniBind, templates) -> list[PairAlignment]:
    return [PairAlignment(examples)] if {"image", "text"} <= set(model.modalities) else []


@pytest.fixture
def registered() -> Iterator[None]:
    register_evaluator("alignment", alignment)
    yield
    unregister_evaluator("alignment")


def test_a_registered_evaluator_runs_after_the_built_ins(registered, spiece_model, media_files) -> None:
    torch.manual_seed(0)
    model = omnibind.create("Ti/16", modalities=("image", "text"), tokenizer=spiece_model, embed_dim=32,
                            image=dict(TINY_TOWER, image_size=32, patch_size=8),
                            text=dict(TINY_TOWER, vocab_size=Tokenizer(spiece_model).vocab_size, max_len=16)).eval()
    examples = [EvalExample("a", {"image": media_files["photo"].read_bytes(), "text": "a photo"}, "photo"),
                EvalExample("b", {"image": media_files["drawing"].read_bytes(), "text": "a red circle"}, "circle")]
    assert evaluator_names() == ("zero_shot", "retrieval", "captioning", "alignment")
    metrics = evaluate_splits(model, {"test": examples})["test"]
    assert metrics["alignment/image-text/pairs"] == 2
    assert -1 <= metrics["alignment/image-text/mean_cosine"] <= 1
    assert "retrieval/image->text/R@1" in metrics and "image_zeroshot/top1" in metrics


def test_an_evaluator_name_is_taken_once(registered) -> None:
    with pytest.raises(InputError, match="already registered"):
        register_evaluator("alignment", lambda examples, model, templates: [])
