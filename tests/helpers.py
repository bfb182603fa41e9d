"""Helpers shared by tests: a tiny text corpus, a tiny three-tower model, and a benchmark script as a module."""

from __future__ import annotations

import importlib.util
import random
import sys
from pathlib import Path
from types import ModuleType

WORDS = (
    "a photo of the cat dog red blue green apple car tree house big small sound piano guitar drum bird "
    "singing hello world violin trumpet ocean beach river mountain snow night city music voice"
).split()


def tiny_corpus(n: int = 3000, seed: int = 0) -> list[str]:
    """Random sentences over a small vocabulary, enough to train a tokenizer in well under a second."""
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 10))) for _ in range(n)]


TINY_TOWER = dict(width=32, depth=1, heads=2, mlp_dim=64)


def tiny_model(spiece: Path | None = None, seed: int = 0):
    """A three-tower model small enough to run anywhere in milliseconds (32-px images, 1.28 s audio)."""
    import torch

    import omnibind
    from omnibind.preprocess.text import Tokenizer

    torch.manual_seed(seed)
    vocab = Tokenizer(spiece).vocab_size if spiece else 64
    return omnibind.create(
        "Ti/16",
        tokenizer=spiece,
        embed_dim=32,
        image=dict(TINY_TOWER, image_size=32, patch_size=8),
        text=dict(TINY_TOWER, vocab_size=vocab, max_len=16),
        audio=dict(TINY_TOWER, n_mels=32, clip_seconds=1.28, patch_size=8),
    ).eval()


BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_benchmark(name: str) -> ModuleType:
    """benchmarks/<name>.py imported as the module <name> (the scripts are not a package)."""
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module
