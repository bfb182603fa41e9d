"""Fixtures for runtime tests: fp32 reference embeddings, an ONNX cache per session, thread restore."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from runtime_models import batches, two_tower_model, wide_model


@pytest.fixture(scope="session")
def reference() -> dict[str, torch.Tensor]:
    """fp32 unit embeddings of `batches()` from `wide_model()`."""
    model = wide_model()
    with torch.no_grad():
        return {m: model.encode(m, x) for m, x in batches().items()}


@pytest.fixture(scope="session")
def two_tower_reference() -> dict[str, torch.Tensor]:
    """fp32 unit embeddings of the image and text `batches()` from `two_tower_model()`."""
    model = two_tower_model()
    with torch.no_grad():
        return {m: model.encode(m, x) for m, x in batches().items() if m in model.modalities}


@pytest.fixture(autouse=True)
def onnx_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Exported graphs go to one temporary cache per session, never to ~/.cache."""
    folder = tmp_path_factory.getbasetemp() / "onnx-cache"
    monkeypatch.setenv("OMNIBIND_CACHE", str(folder))
    return folder


@pytest.fixture
def restore_threads():
    """Commands set torch's thread count, which is process-wide; put it back for later tests."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)
