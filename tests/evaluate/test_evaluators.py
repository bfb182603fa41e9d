"""Evaluators on a model whose embeddings are known: the metrics must be exact."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from omnibind.evaluate.examples import EvalExample
from omnibind.evaluate.retrieval import Retrieval
from omnibind.evaluate.zero_shot import ZeroShotClassification

DIM = 8


class KnownModel(torch.nn.Module):
    """Stands in for OmniBind: "inputs" are strings naming a basis direction ("e3", or text "class 3")."""

    modalities = ("image", "text", "audio")

    def __init__(self) -> None:
        super().__init__()
        self.logit_scale = torch.nn.Parameter(torch.zeros(1))
        self.config = type("C", (), {"embed_dim": DIM})

    def encode(self, modality: str, inputs: list[str]) -> torch.Tensor:
        rows = []
        for item in inputs:
            item = item.decode() if isinstance(item, bytes) else item
            index = int(item.rsplit(" ", 1)[-1].strip(".").lstrip("e"))
            rows.append(F.one_hot(torch.tensor(index % DIM), DIM).float())
        return torch.stack(rows)


def test_zero_shot_accuracy_is_exact() -> None:
    # images e0..e3 labelled with class names "class k"; the image e2 is labelled "class 1" (a miss)
    examples = [EvalExample(f"k{i}", {"image": f"e{i}"}, label=f"class {lab}") for i, lab in
                enumerate([0, 1, 1, 3])]
    evaluator = ZeroShotClassification(examples, "image", templates=["{}"])
    result = evaluator.run(KnownModel())
    # classes present: class 0, class 1, class 3 → image e2 scores 0 against all: its rank is not 1
    assert result["image_zeroshot/top1"] == 0.75
    assert result["image_zeroshot/top5"] == 1.0
    assert result["image_zeroshot/top1_chance"] == 1 / 3 and result["image_zeroshot/classes"] == 3


def test_retrieval_metrics_are_exact_in_both_directions() -> None:
    # four pairs; examples 1 and 3 share the caption "e1", so it is one text relevant to both images
    texts = ["e0", "e1", "e2", "e1"]
    examples = [EvalExample(f"k{i}", {"image": f"e{i}".encode(), "text": texts[i]}) for i in range(4)]
    examples.append(EvalExample("extra", {"image": b"e5"}))  # a distractor image without text
    examples.append(EvalExample("copy", {"image": b"e2"}))  # the same picture again: one item
    evaluator = Retrieval(examples, ["image", "text"])
    result = evaluator.run(KnownModel())
    # text→image: every caption finds one of its pictures first
    assert result["retrieval/text->image/R@1"] == 1.0
    assert result["retrieval/text->image/queries"] == 3 and result["retrieval/text->image/items"] == 5
    # image→text: image e3 (caption "e1") scores 0 against all three texts; ties count against it → rank 3
    assert result["retrieval/image->text/R@1"] == 0.75
    assert result["retrieval/image->text/median_rank"] == 1.0
    assert result["retrieval/image->text/R@1_chance"] == 1 / 3
    assert set(evaluator.ranked) == {"image->text", "text->image"}
