"""Cross-modal retrieval for every modality pair present: R@1/5/10 and median rank, both directions.

Items are deduplicated by content (identical captions, or the same picture shared by two examples, are
one item), and an item is relevant to a query when some example pairs their contents: an image with
three captions has three relevant texts, and a caption shared by three drawings is relevant to each.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import permutations
from pathlib import Path
from typing import Any

import torch

import omnibind.modalities as registry
from omnibind.errors import InputError
from omnibind.evaluate.examples import EvalExample, embed_sources, with_modality
from omnibind.evaluate.metrics import retrieval_metrics
from omnibind.models.model import OmniBind


@dataclass
class Ranked:
    """One query with its top results, kept for the report's example grid."""

    query: EvalExample
    results: list[tuple[EvalExample, float]]


def content_id(modality: str, source: Any) -> str:
    """Identity of an input's content: the value itself for modalities without files (a caption), the
    SHA-1 of the bytes for media (bytes, or a path whose file is read)."""
    if not registry.get(modality).is_media:
        return f"{modality}:{source}"
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
    elif isinstance(source, str | os.PathLike):
        data = Path(source).read_bytes()
    else:
        raise InputError(f"{modality} input", f"cannot identify a {type(source).__name__}", "bytes or a file path")
    return f"{modality}:{hashlib.sha1(data).hexdigest()}"


class Pool:
    """The distinct contents of one modality across examples, with the first example holding each."""

    def __init__(self, examples: Sequence[EvalExample], modality: str) -> None:
        self.first: dict[str, EvalExample] = {}
        self.of_example: dict[int, str] = {}
        for example in with_modality(examples, modality):
            cid = content_id(modality, example.inputs[modality])
            self.first.setdefault(cid, example)
            self.of_example[id(example)] = cid
        self.ids = list(self.first)
        self.index = {cid: i for i, cid in enumerate(self.ids)}
        self.modality = modality

    def sources(self) -> list[Any]:
        """One source per distinct content, in pool order."""
        return [self.first[cid].inputs[self.modality] for cid in self.ids]


class Retrieval:
    """Query with each distinct `a` input, rank every distinct `b` input; examples lacking `b` still add
    distractors, and contents that pair with nothing in `b` are not queries."""

    def __init__(self, examples: Sequence[EvalExample], modalities: Sequence[str] | None = None,
                 batch_size: int = 64, keep: int = 4, name: str = "retrieval") -> None:
        self.examples = list(examples)
        present = [m for m in registry.names() if with_modality(self.examples, m)]
        self.modalities = [m for m in (modalities or present) if m in present]
        self.batch_size, self.keep, self.name = batch_size, keep, name
        self.ranked: dict[str, list[Ranked]] = {}

    def relevance(self, pools: dict[str, Pool], a: str, b: str) -> torch.Tensor:
        """(distinct a, distinct b) matrix: True where some example pairs the two contents."""
        relevant = torch.zeros(len(pools[a].ids), len(pools[b].ids), dtype=torch.bool)
        for example in self.examples:
            ca, cb = pools[a].of_example.get(id(example)), pools[b].of_example.get(id(example))
            if ca is not None and cb is not None:
                relevant[pools[a].index[ca], pools[b].index[cb]] = True
        return relevant

    def run(self, model: OmniBind) -> dict[str, float]:
        """Metrics named "<name>/<a>-><b>/R@k" for each ordered pair the model and the data both have."""
        usable = [m for m in self.modalities if m in model.modalities]
        pools = {m: Pool(self.examples, m) for m in usable}
        emb = {m: embed_sources(model, m, pool.sources(), self.batch_size) for m, pool in pools.items()}
        out: dict[str, float] = {}
        for a, b in permutations(usable, 2):
            relevant = self.relevance(pools, a, b)
            queries = relevant.any(dim=1)
            if queries.sum() < 2:
                continue
            scores = emb[a][queries] @ emb[b].T
            prefix = f"{self.name}/{a}->{b}"
            out.update({f"{prefix}/{k}": v for k, v in retrieval_metrics(scores, relevant[queries]).items()})
            n = len(pools[b].ids)
            out.update({f"{prefix}/R@{k}_chance": min(k, n) / n for k in (1, 5, 10)})  # one relevant item each
            out.update({f"{prefix}/median_rank_chance": (n + 1) / 2, f"{prefix}/queries": float(queries.sum()),
                        f"{prefix}/items": float(n)})
            query_examples = [pools[a].first[cid] for cid, q in zip(pools[a].ids, queries.tolist(), strict=True) if q]
            self.ranked[f"{a}->{b}"] = self._top(query_examples, [pools[b].first[c] for c in pools[b].ids], scores)
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
