"""Queries by text, picture or sound: embed the query with the index's own model, then search the index."""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Collection
from pathlib import Path
from typing import Any

import numpy as np
import torch

from omnibind.errors import InputError
from omnibind.models.model import OmniBind
from omnibind.search.identity import check_same_model, identify
from omnibind.search.index import Hit, SearchIndex

QUERY_MODALITIES = ("text", "image", "audio")
ITEM_MODALITIES = ("image", "audio")
MAX_K = 1000
TEXT_CACHE_SIZE = 512

QuerySource = str | os.PathLike | bytes


class Searcher:
    """The index and the model that built it; thread-safe (model calls are serialised)."""

    def __init__(self, index: SearchIndex, model: OmniBind, model_name: str | Path | None = None) -> None:
        check_same_model(index.folder, index.model, identify(model, model_name or index.model.name))
        self.index = index
        self.model = model
        self._lock = threading.Lock()
        self._texts: OrderedDict[str, np.ndarray] = OrderedDict()

    @property
    def query_modalities(self) -> tuple[str, ...]:
        """Modalities this model can embed as queries (text needs a tokenizer as well as a text tower)."""
        usable = [m for m in QUERY_MODALITIES if m in self.model.modalities]
        return tuple(m for m in usable if m != "text" or "text" in self.model.processors)

    def check_query_modality(self, modality: str) -> None:
        """Reject a query modality the model cannot embed, naming the ones it can."""
        if modality not in QUERY_MODALITIES:
            raise InputError("modality", f"unknown query modality {modality!r}", "text, image or audio")
        if modality not in self.query_modalities:
            has_tower = modality in self.model.modalities
            problem = "its text tower has no tokenizer" if has_tower else f"it has no {modality} tower"
            raise InputError(modality, f"this index's model cannot embed {modality} queries: {problem}",
                             f"a query by {' or '.join(self.query_modalities) or 'nothing'}")

    @torch.no_grad()
    def embed(self, modality: str, source: QuerySource) -> np.ndarray:
        """The (D,) unit vector of one query: a text, or an image / audio file path or its bytes."""
        self.check_query_modality(modality)
        if modality == "text":
            return self._embed_text(source)
        if not isinstance(source, bytes | bytearray | str | os.PathLike):
            raise InputError(modality, f"got {type(source).__name__}", "a file path or the file's bytes")
        tensor = self.model.processors[modality](bytes(source) if isinstance(source, bytearray) else source)
        with self._lock:
            return self.model.encode(modality, tensor[None]).float().cpu().numpy()[0]

    def _embed_text(self, text: Any) -> np.ndarray:
        if not isinstance(text, str) or not text.strip():
            raise InputError("text", "empty text" if isinstance(text, str) else f"got {type(text).__name__}",
                             "a non-empty text query")
        with self._lock:
            cached = self._texts.get(text)
            if cached is None:
                cached = self.model.encode("text", [text]).float().cpu().numpy()[0]
                self._texts[text] = cached
                if len(self._texts) > TEXT_CACHE_SIZE:
                    self._texts.popitem(last=False)
            else:
                self._texts.move_to_end(text)
        return cached

    def search(self, modality: str, source: QuerySource, k: int = 10,
               only: Collection[str] | None = None) -> list[Hit]:
        """The k indexed items closest to the query, optionally restricted to some item modalities."""
        if not 1 <= k <= MAX_K:
            raise InputError("k", f"got {k}", f"a number of results from 1 to {MAX_K}")
        if only is not None:
            unknown = sorted(set(only) - set(ITEM_MODALITIES))
            if unknown:
                raise InputError("modality filter", f"unknown modality {unknown[0]!r}", "image or audio")
        return self.index.search(self.embed(modality, source), k, only)
