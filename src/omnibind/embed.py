"""Embed many files and texts in batches with a progress bar, and write the vectors as .npy or .jsonl."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

import omnibind.modalities as registry
from omnibind.errors import InputError
from omnibind.models.model import OmniBind
from omnibind.progress import progress_bar
from omnibind.runtime.prefetch import AHEAD, prefetch


@dataclass
class Item:
    """One thing to embed: a file path (of any media modality) or a text."""

    modality: str
    source: str


def plan_items(files: Sequence[str | Path], texts: Sequence[str]) -> list[Item]:
    """Items in input order; a file's modality comes from its extension, with an error naming it."""
    items = []
    for path in files:
        modality = registry.modality_of(path)
        if modality is None:
            raise InputError(path, "unknown file type", f"a file of a known type: {known_file_types()}")
        items.append(Item(modality, str(path)))
    items += [Item(registry.TEXT.name, text) for text in texts]
    if not items:
        raise InputError("inputs", "nothing to embed", "one or more files or --text values")
    return items


def known_file_types() -> str:
    """The media modalities with their preferred extensions, for error messages: "image (.jpg, .jpeg, …)"."""
    return ", ".join(f"{m.name} (.{', .'.join(m.extensions[:3])}, …)" for m in registry.media())


def check_towers(model: OmniBind, items: Sequence[Item]) -> None:
    """Refuse the first item whose modality the model has no tower for, naming the file (or text)."""
    for item in items:
        if item.modality not in model.modalities:
            what = item.source if registry.get(item.modality).is_media else f"--text {item.source[:40]!r}"
            raise InputError(what, f"this model has no {item.modality} tower",
                             f"inputs of its modalities: {', '.join(model.modalities)}")


def _batches(items: list[Item], size: int) -> Iterator[tuple[str, list[int]]]:
    """Indices of same-modality runs of at most `size` items, keeping each modality's order."""
    for modality in dict.fromkeys(item.modality for item in items):
        indices = [i for i, item in enumerate(items) if item.modality == modality]
        for start in range(0, len(indices), size):
            yield modality, indices[start : start + size]


@torch.no_grad()
def embed_items(model: OmniBind, items: list[Item], batch_size: int = 32, show_progress: bool = True,
                ahead: int = AHEAD) -> np.ndarray:
    """(N, D) float32 unit vectors, row i for items[i]; same-modality items go through in batches, the next
    `ahead` batches decoded on worker threads while one is embedded."""
    check_towers(model, items)
    out = np.zeros((len(items), model.config.embed_dim), dtype=np.float32)

    def prepare(run: tuple[str, list[int]]) -> tuple[str, list[int], torch.Tensor]:
        modality, indices = run
        return modality, indices, model.preprocess(modality, [items[i].source for i in indices])

    with progress_bar(disable=not show_progress) as progress:
        task = progress.add_task("embedding", total=len(items))
        for modality, indices, batch in prefetch(_batches(items, batch_size), prepare, ahead):
            vectors = model.encode(modality, batch)
            out[indices] = vectors.float().cpu().numpy()
            progress.advance(task, len(indices))
    return out


OUTPUT_SUFFIXES = (".npy", ".jsonl")


def check_output_path(path: Path) -> None:
    """Reject an output path of unknown type before any work is done."""
    if path.suffix not in OUTPUT_SUFFIXES:
        raise InputError(path, "unknown output type", "a path ending in .npy or .jsonl")


def write_embeddings(path: Path, items: list[Item], vectors: np.ndarray) -> None:
    """.npy: the (N, D) array, rows in input order; .jsonl: one {modality, source, embedding} per line."""
    check_output_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".npy":
        np.save(path, vectors)
        return
    with path.open("w") as handle:
        for item, vector in zip(items, vectors, strict=True):
            record = {"modality": item.modality, "source": item.source, "embedding": vector.tolist()}
            handle.write(json.dumps(record) + "\n")
