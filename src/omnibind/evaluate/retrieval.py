"""Cross-modal retrieval for every modality pair present: R@1/5/10 and median rank, both directions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import permutations

import torch

from omnibind.evaluate.examples import EvalExample, embed_sources, with_modality
from omnibind.evaluate.metrics import paired_relevance, retrieval_metrics
from omnibind.models.model import OmniBind


@dataclass
class Ranked:
    """One query with its top results, kept for the report's example grid."""

    query: EvalExample
    results: list[tuple[EvalExample, float]]


class Retrieval:
    """Query with each example's `a` input, rank every example's `b` input; the match shares the key.

    Examples lacking `b` still serve as distractors; those lacking `a` are not queries.
    """

    def __init__(self, examples: Sequence[EvalExample], modalities: Sequence[str] | None = None,
                 batch_size: int = 64, keep: int = 4, name: str = "retrieval") -> None:
        self.examples = list(examples)
        present = [m for m in ("image", "text", "audio") if with_modality(self.examples, m)]
        self.modalities = [m for m in (modalities or present) if m in present]
        self.batch_size, self.keep, self.name = batch_size, keep, name
        self.ranked: dict[str, list[Ranked]] = {}

    def run(self, model: OmniBind) -> dict[str, float]:
        """Metrics named "<name>/<a>-><b>/R@k" for each ordered pair the model and the data both have."""
        usable = [m for m in self.modalities if m in model.modalities]
        pools = {m: with_modality(self.examples, m) for m in usable}
        emb = {m: embed_sources(model, m, [e.inputs[m] for e in pool], self.batch_size) for m, pool in pools.items()}
        out: dict[str, float] = {}
        for a, b in permutations(usable, 2):
            relevant = paired_relevance([e.key for e in pools[a]], [e.key for e in pools[b]])
            queries = relevant.any(dim=1)
            if queries.sum() < 2:
                continue
            scores = emb[a][queries] @ emb[b].T
            prefix = f"{self.name}/{a}->{b}"
            metrics = retrieval_metrics(scores, relevant[queries])
            out.update({f"{prefix}/{k}": v for k, v in metrics.items()})
            n = len(pools[b])
            out.update({f"{prefix}/R@{k}_chance": min(k, n) / n for k in (1, 5, 10)})  # one relevant item each
            out.update({f"{prefix}/median_rank_chance": (n + 1) / 2, f"{prefix}/queries": float(queries.sum()),
                        f"{prefix}/items": float(n)})
            query_pool = [e for e, q in zip(pools[a], queries.tolist(), strict=True) if q]
            self.ranked[f"{a}->{b}"] = self._top(query_pool, pools[b], scores)
        return out

    def _top(self, queries: list[EvalExample], items: list[EvalExample], scores: torch.Tensor) -> list[Ranked]:
        keep = min(self.keep, len(queries))
        picks = torch.linspace(0, len(queries) - 1, keep).round().long().unique().tolist() if keep else []
        out = []
        for i in picks:
            values, indices = scores[i].topk(min(5, len(items)))
            top = [(items[j], float(v)) for v, j in zip(values.tolist(), indices.tolist(), strict=True)]
            out.append(Ranked(queries[i], top))
        return out
