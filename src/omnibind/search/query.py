"""Queries by text, picture, sound or any registered modality: embed the query with the index's own model, then
search the index. Which modalities can be queried and which can be results comes from the modality registry
and the model's towers: typed queries (modalities without files, such as text) take a string, media ones a
file path or its bytes."""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

import omnibind.modalities as registry
from omnibind.errors import InputError
from omnibind.models.model import OmniBind
from omnibind.search.identity import check_same_model, identify
from omnibind.search.index import Hit, SearchIndex

MAX_K = 1000
TEXT_CACHE_SIZE = 512

QuerySource = str | os.PathLike | bytes


def one_of(names: Iterable[str], empty: str = "nothing") -> str:
    """Names as a phrase for error messages: "image", "image or audio", "text, image or audio"."""
    names = list(names)
    if not names:
        return empty
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def query_order() -> tuple[str, ...]:
    """Every registered modality in the order queries are offered: typed ones (text) first, then media."""
    modalities = registry.all_modalities()
    return tuple(m.name for m in modalities if not m.is_media) + tuple(m.name for m in modalities if m.is_media)


class Searcher:
    """The index and the model that built it; thread-safe (model calls are serialised)."""

    def __init__(self, index: SearchIndex, model: OmniBind, model_name: str | Path | None = None) -> None:
        check_same_model(index.name, index.model, identify(model, model_name or index.model.name), model)
        self.index = index
        self.model = model
        self._lock = threading.Lock()
        self._typed: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()

    @property
    def query_modalities(self) -> tuple[str, ...]:
        """Modalities this model can embed as queries: a tower and its preprocessor (text needs a tokenizer)."""
        return tuple(m for m in query_order() if m in self.model.modalities and m in self.model.processors)

    @property
    def item_modalities(self) -> tuple[str, ...]:
        """Media modalities this index can hold (the registry's media the model has a tower for)."""
        return tuple(m for m in registry.media_names() if m in self.model.modalities)

    def check_query_modality(self, modality: str) -> None:
        """Reject a query modality the model cannot embed, naming the ones it can."""
        if modality not in registry.names():
            raise InputError("modality", f"unknown query modality {modality!r}", one_of(query_order()))
        if modality not in self.query_modalities:
            raise InputError(modality, f"this index's model cannot embed {modality} queries: {self._lacks(modality)}",
                             f"a query by {' or '.join(self.query_modalities) or 'nothing'}")

    def _lacks(self, modality: str) -> str:
        """Why the model cannot embed this modality."""
        if modality not in self.model.modalities:
            return f"it has no {modality} tower"
        assets = registry.get(modality).asset_names
        missing = f" (the checkpoint has no {' or '.join(assets)})" if assets else ""
        return f"its {modality} tower has no preprocessor{missing}"

    def check_filter(self, only: Collection[str], field: str = "modality filter") -> None:
        """Reject result modalities that are not registered media modalities, naming those this index holds."""
        unknown = sorted(set(only) - set(registry.media_names()))
        if unknown:
            raise InputError(field, f"unknown modality {unknown[0]!r}", one_of(self.item_modalities))

    @torch.no_grad()
    def embed(self, modality: str, source: QuerySource) -> np.ndarray:
        """The (D,) unit vector of one query: a text (or other typed query), or a media file's path or bytes."""
        prepared = self.prepare(modality, source)
        if not registry.get(modality).is_media:
            return self._embed_typed(modality, prepared)
        with self._lock:
            return self.model.encode(modality, prepared[None]).float().cpu().numpy()[0]

    def _embed_typed(self, modality: str, text: str) -> np.ndarray:
        """A checked string query, cached (the same text is often searched again, e.g. with another filter)."""
        vector = self.cached(modality, text)
        if vector is None:
            with self._lock:
                vector = self.model.encode(modality, [text]).float().cpu().numpy()[0]
            self.remember(modality, text, vector)
        return vector

    def search(self, modality: str, source: QuerySource, k: int = 10,
               only: Collection[str] | None = None) -> list[Hit]:
        """The k indexed items closest to the query, optionally restricted to some item modalities."""
        self._check_k(k)
        if only is not None:
            self.check_filter(only)
        return self.search_vector(self.embed(modality, source), k, only, modality)

    def _check_k(self, k: int) -> None:
        if not 1 <= k <= MAX_K:
            raise InputError("k", f"got {k}", f"a number of results from 1 to {MAX_K}")

    def prepare(self, modality: str, source: QuerySource) -> Any:
        """What the tower takes for one query, without running it: a media file decoded to its (C, ...) tensor,
        or a typed query checked (the service decodes in its pool, then schedules the tower)."""
        self.check_query_modality(modality)
        if not registry.get(modality).is_media:
            return _checked_typed(modality, source)
        if not isinstance(source, bytes | bytearray | str | os.PathLike):
            raise InputError(modality, f"got {type(source).__name__}", "a file path or the file's bytes")
        return self.model.processors[modality].one(bytes(source) if isinstance(source, bytearray) else source)

    def cached(self, modality: str, text: str) -> np.ndarray | None:
        """A query's vector when it was embedded recently: a typed query by its text, an uploaded file by
        "sha256:<its hash>" (the service's key)."""
        with self._lock:
            found = self._typed.get((modality, text))
            if found is not None:
                self._typed.move_to_end((modality, text))
            return found

    def remember(self, modality: str, text: str, vector: np.ndarray) -> None:
        """Keep a query's vector for the next identical query (keyed as in `cached`)."""
        with self._lock:
            self._typed[(modality, text)] = vector
            if len(self._typed) > TEXT_CACHE_SIZE:
                self._typed.popitem(last=False)

    def search_vector(self, vector: np.ndarray, k: int = 10, only: Collection[str] | None = None,
                      modality: str = "query") -> list[Hit]:
        """The k indexed items closest to an embedded query; a vector that is not finite is refused."""
        self._check_k(k)
        if not np.isfinite(vector).all():
            raise InputError(modality, "its embedding is not finite (the input is degenerate)",
                             "an input the model can embed")
        return self.index.search(vector, k, only)


def _checked_typed(modality: str, source: Any) -> str:
    """A typed query (text) as given, refused when it is not a non-empty string."""
    if not isinstance(source, str) or not source.strip():
        raise InputError(modality, "empty text" if isinstance(source, str) else f"got {type(source).__name__}",
                         f"a non-empty {modality} query")
    return source
