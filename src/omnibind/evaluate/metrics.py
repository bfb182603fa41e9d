"""Metric formulas on score matrices, kept free of models so they can be checked on known answers."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def topk_accuracy(scores: torch.Tensor, labels: torch.Tensor, ks: Sequence[int] = (1, 5)) -> dict[str, float]:
    """Fraction of rows whose true label is among the k highest scores, for each k (capped at #classes)."""
    if scores.shape[0] != labels.shape[0]:
        raise ValueError(f"scores has {scores.shape[0]} rows but labels has {labels.shape[0]}")
    out = {}
    for k in ks:
        top = scores.topk(min(k, scores.shape[1]), dim=1).indices
        out[f"top{k}"] = (top == labels[:, None]).any(dim=1).float().mean().item()
    return out


def best_ranks(scores: torch.Tensor, relevant: torch.Tensor) -> torch.Tensor:
    """1-based rank of the best-placed relevant item for each query row (ties count against the query)."""
    if not relevant.any(dim=1).all():
        raise ValueError("every query needs at least one relevant item")
    best_relevant = scores.masked_fill(~relevant, float("-inf")).max(dim=1).values
    return (scores > best_relevant[:, None]).sum(dim=1) + (
        (scores == best_relevant[:, None]) & ~relevant).sum(dim=1) + 1


def retrieval_metrics(scores: torch.Tensor, relevant: torch.Tensor, ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """Recall@k (a relevant item within the top k) and the median rank of the first relevant item."""
    ranks = best_ranks(scores.float(), relevant.bool())
    out = {f"R@{k}": (ranks <= k).float().mean().item() for k in ks}
    out["median_rank"] = ranks.float().quantile(0.5).item()  # the mean of the two middle ranks when even
    return out
