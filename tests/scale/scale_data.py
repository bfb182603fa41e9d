"""Data helpers of the scale tests (a module of its own: test files import it, never a conftest, whose module
name other test folders share)."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq


def _media_manifest_writer() -> Callable[..., Any]:
    """tests/data's `write_media_manifest` (real-format PNG, JPEG, WAV and FLAC files with captions), loaded by
    path so that no module name clashes with another folder's conftest."""
    path = Path(__file__).resolve().parents[1] / "data" / "conftest.py"
    spec = importlib.util.spec_from_file_location("scale_media_manifest", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module.write_media_manifest  # type: ignore[no-any-return]


write_media_manifest = _media_manifest_writer()


@dataclass
class Shards:
    """Tar shards as a brace pattern, and the (key, modality) pairs their samples hold."""

    pattern: str
    count: int
    pairs: set[tuple[str, str]]


def clustered(n: int, dim: int, seed: int = 0, centres: int = 20) -> np.ndarray:
    """n unit vectors around a few random centres: data with the structure approximate indexes rely on."""
    rng = np.random.default_rng(seed)
    middle = rng.standard_normal((centres, dim)).astype(np.float32)
    points = middle[rng.integers(0, centres, n)] + 0.6 * rng.standard_normal((n, dim)).astype(np.float32)
    return points / np.linalg.norm(points, axis=1, keepdims=True)


def read_rows(folder: Path) -> tuple[list[tuple[str, str]], np.ndarray]:
    """Every (key, modality) row of an embedding folder, in file order, and the vectors as one array."""
    pairs: list[tuple[str, str]] = []
    vectors = []
    for path in sorted(folder.glob("part-*.parquet")):
        table = pq.read_table(path)
        pairs += list(zip(table.column("key").to_pylist(), table.column("modality").to_pylist(), strict=True))
        vectors.append(np.stack(table.column("embedding").to_numpy(zero_copy_only=False)))
    return pairs, np.concatenate(vectors).astype(np.float32)


def by_pair(folder: Path) -> dict[tuple[str, str], np.ndarray]:
    """Vectors of an embedding folder keyed by (key, modality); an assertion fails on a duplicate row."""
    pairs, vectors = read_rows(folder)
    assert len(pairs) == len(set(pairs)), "a (key, modality) row appears twice"
    return dict(zip(pairs, vectors, strict=True))
