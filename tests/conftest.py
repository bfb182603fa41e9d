"""Shared fixtures: a small SigLIP-style SentencePiece model trained on the fly."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from omnibind.preprocess.text import train_tokenizer

WORDS = (
    "a photo of the cat dog red blue green apple car tree house big small sound piano guitar drum bird "
    "singing hello world violin trumpet ocean beach river mountain snow night city music voice"
).split()


def tiny_corpus(n: int = 3000, seed: int = 0) -> list[str]:
    """Random sentences over a small vocabulary, enough to train a tokenizer in well under a second."""
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 10))) for _ in range(n)]


@pytest.fixture(scope="session")
def spiece_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A unigram SentencePiece model with SigLIP's id layout (pad 0, eos 1, unk 2)."""
    return train_tokenizer(tiny_corpus(), tmp_path_factory.mktemp("tok") / "spiece", vocab_size=64)
