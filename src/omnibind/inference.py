"""Zero-shot classification: score inputs against class names turned into prompts, SigLIP-style."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

import omnibind.modalities as registry
from omnibind.errors import InputError
from omnibind.models.model import OmniBind


def default_templates(modality: str) -> tuple[str, ...]:
    """The zero-shot prompts of a modality ("a photo of {}."), as its registered module defines them."""
    return tuple(registry.get(modality).templates)


@dataclass
class ZeroShotResult:
    """Logits (N, C) and per-label sigmoid probabilities of N inputs against C labels."""

    labels: list[str]
    logits: torch.Tensor
    probs: torch.Tensor

    def top(self, k: int = 1) -> list[list[tuple[str, float]]]:
        """For each input, the k best labels with their probabilities, best first."""
        values, indices = self.probs.topk(min(k, len(self.labels)), dim=-1)
        return [
            [(self.labels[i], float(v)) for v, i in zip(row_v, row_i, strict=True)]
            for row_v, row_i in zip(values.tolist(), indices.tolist(), strict=True)
        ]


@torch.no_grad()
def label_embeddings(model: OmniBind, labels: Sequence[str], templates: Sequence[str]) -> torch.Tensor:
    """One unit vector per label: the mean of its prompts' text embeddings, renormalised."""
    prompts = [t.format(label) for label in labels for t in templates]
    emb = model.encode(registry.TEXT.name, prompts).view(len(labels), len(templates), -1).mean(dim=1)
    return F.normalize(emb, dim=-1)


@torch.no_grad()
def zero_shot(
    model: OmniBind,
    inputs: Any,
    labels: Sequence[str],
    modality: str = registry.IMAGE.name,
    templates: Sequence[str] | None = None,
) -> ZeroShotResult:
    """Classify inputs of any modality the model has (paths, bytes, PIL images or a tensor batch) among
    `labels`; the prompts default to the modality's own templates."""
    labels = [str(label).strip() for label in labels]
    if not labels or not all(labels):
        raise InputError("labels", "empty label list or empty label", "one or more non-empty class names")
    templates = tuple(templates or default_templates(modality))
    if not all("{}" in t for t in templates):
        raise InputError("templates", f"{templates} lack a '{{}}' placeholder", "templates such as 'a photo of {}.'")
    x = model.encode(modality, inputs)
    logits = model.logits(x, label_embeddings(model, labels, templates).to(x.dtype))
    return ZeroShotResult(labels, logits.float().cpu(), torch.sigmoid(logits.float()).cpu())
