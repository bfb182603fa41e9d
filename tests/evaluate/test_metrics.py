"""Metrics on hand-made scores with known answers: the numbers must be exact."""

from __future__ import annotations

import pytest
import torch

from omnibind.evaluate.metrics import best_ranks, retrieval_metrics, topk_accuracy


def test_topk_accuracy_exact() -> None:
    scores = torch.tensor([[0.9, 0.1, 0.0], [0.2, 0.3, 0.5], [0.1, 0.6, 0.3], [0.4, 0.35, 0.25]])
    labels = torch.tensor([0, 1, 1, 2])
    # row 0: rank 1; row 1: rank 2; row 2: rank 1; row 3: rank 3
    assert topk_accuracy(scores, labels, ks=(1, 2, 5)) == {"top1": 0.5, "top2": 0.75, "top5": 1.0}


def test_ranks_and_recall_exact() -> None:
    scores = torch.tensor([
        [0.9, 0.8, 0.1, 0.0],   # relevant item 0 → rank 1
        [0.9, 0.8, 0.7, 0.0],   # relevant item 2 → rank 3
        [0.1, 0.2, 0.3, 0.4],   # relevant items 0 and 3 → best rank 1
        [0.5, 0.5, 0.1, 0.2],   # relevant item 1 ties with item 0 → rank 2 (ties count against)
    ])
    relevant = torch.tensor([[1, 0, 0, 0], [0, 0, 1, 0], [1, 0, 0, 1], [0, 1, 0, 0]]).bool()
    assert best_ranks(scores, relevant).tolist() == [1, 3, 1, 2]
    metrics = retrieval_metrics(scores, relevant, ks=(1, 2, 3))
    assert metrics == {"R@1": 0.5, "R@2": 0.75, "R@3": 1.0, "median_rank": 1.5}


def test_median_rank_of_identity_and_reversed() -> None:
    n = 5
    assert retrieval_metrics(torch.eye(n), torch.eye(n).bool())["median_rank"] == 1.0
    reversed_scores = -torch.eye(n)
    # the relevant item scores lowest: rank n for every query
    assert retrieval_metrics(reversed_scores, torch.eye(n).bool(), ks=(1,)) == {"R@1": 0.0, "median_rank": 5.0}


def test_queries_without_relevant_items_are_rejected() -> None:
    with pytest.raises(ValueError, match="at least one relevant"):
        best_ranks(torch.zeros(2, 2), torch.tensor([[True, False], [False, False]]))
