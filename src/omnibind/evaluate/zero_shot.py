"""Zero-shot classification: class names × prompt templates, averaged text embeddings, top-1 / top-5."""

from __future__ import annotations

from collections.abc import Sequence

import torch

import omnibind.modalities as registry
from omnibind.evaluate.examples import EvalExample, embed_sources, with_modality
from omnibind.evaluate.metrics import topk_accuracy
from omnibind.inference import default_templates, label_embeddings
from omnibind.models.model import OmniBind


class ZeroShotClassification:
    """Classify the `modality` inputs of labelled examples among all class names that occur."""

    def __init__(self, examples: Sequence[EvalExample], modality: str = registry.IMAGE.name,
                 templates: Sequence[str] | None = None, batch_size: int = 64, name: str | None = None) -> None:
        self.examples = [e for e in with_modality(examples, modality) if e.label]
        self.modality = modality
        self.templates = tuple(templates or default_templates(modality))
        self.batch_size = batch_size
        self.name = name or f"{modality}_zeroshot"
        self.classnames = sorted({e.label for e in self.examples})

    def run(self, model: OmniBind) -> dict[str, float]:
        """top1 / top5 accuracy and their chance levels; empty when there is nothing to classify."""
        if len(self.classnames) < 2:
            return {}
        x = embed_sources(model, self.modality, [e.inputs[self.modality] for e in self.examples], self.batch_size)
        with torch.no_grad():
            classes = label_embeddings(model, self.classnames, self.templates).float().cpu()
        index = {c: i for i, c in enumerate(self.classnames)}
        labels = torch.tensor([index[e.label] for e in self.examples])
        scores = x @ classes.T
        self.predictions = scores.argmax(dim=1)
        out = {f"{self.name}/{k}": v for k, v in topk_accuracy(scores, labels, (1, 5)).items()}
        n = len(self.classnames)
        out.update({f"{self.name}/top1_chance": 1 / n, f"{self.name}/top5_chance": min(5, n) / n,
                    f"{self.name}/classes": float(n), f"{self.name}/examples": float(len(self.examples))})
        return out
