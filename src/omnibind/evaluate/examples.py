"""What evaluators read: examples with a key, raw inputs per modality and an optional class name."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from omnibind.models.model import OmniBind
from omnibind.progress import progress_bar


@dataclass
class EvalExample:
    """One evaluation example: inputs are raw sources (bytes, paths or text) keyed by modality."""

    key: str
    inputs: dict[str, Any]
    label: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@torch.no_grad()
def embed_sources(model: OmniBind, modality: str, sources: Sequence[Any], batch_size: int = 64,
                  show_progress: bool = False) -> torch.Tensor:
    """(N, D) float32 unit embeddings of raw sources, computed in batches on the model's device."""
    model.eval()
    parts = []
    with progress_bar(disable=not show_progress) as progress:
        task = progress.add_task(f"embedding {modality}", total=len(sources))
        for start in range(0, len(sources), batch_size):
            chunk = list(sources[start : start + batch_size])
            parts.append(model.encode(modality, chunk).float().cpu())
            progress.advance(task, len(chunk))
    return torch.cat(parts) if parts else torch.zeros(0, model.config.embed_dim)


def with_modality(examples: Iterable[EvalExample], modality: str) -> list[EvalExample]:
    """The examples that carry `modality`."""
    return [e for e in examples if e.inputs.get(modality) is not None]
