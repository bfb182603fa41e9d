"""Tokenizer: ids identical to transformers' SiglipTokenizer for the same spiece.model; training."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from omnibind.errors import InputError
from omnibind.preprocess.text import Tokenizer, canonicalize, train_tokenizer

ALPHABET = "abcdefghij klmnop ABCXYZ.,!?'\"-—éîüßø中文 \t\n▁0123456789"


def random_texts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    texts = ["".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 60))) for _ in range(n)]
    texts += ["A photo of a cat.", "  Hello,   World!! ", "the sound of a PIANO", "word " * 40]
    return [t for t in texts if t.strip()]


@pytest.mark.parametrize("max_len", [16, 64])
def test_ids_match_siglip_tokenizer(spiece_model: Path, max_len: int) -> None:
    transformers = pytest.importorskip("transformers")
    hf = transformers.SiglipTokenizer(str(spiece_model))
    texts = random_texts(500)
    expected = hf(texts, padding="max_length", truncation=True, max_length=max_len)["input_ids"]
    assert Tokenizer(spiece_model, max_len=max_len)(texts).tolist() == expected


def test_sticky_eos_and_padding(spiece_model: Path) -> None:
    tok = Tokenizer(spiece_model, max_len=8)
    short, long = tok(["cat", "cat dog " * 20]).tolist()
    assert short[-1] == tok.pad_id and tok.eos_id in short
    assert long[-1] == tok.eos_id and len(long) == 8


def test_canonicalize() -> None:
    assert canonicalize("  A Photo,  of\ta CAT! ") == "a photo of a cat"
    assert canonicalize("Keep Case", lower_case=False) == "Keep Case"


@pytest.mark.parametrize("bad", ["", "   ", "\n\t"])
def test_empty_text_is_an_error(spiece_model: Path, bad: str) -> None:
    with pytest.raises(InputError, match="empty text"):
        Tokenizer(spiece_model)([bad])


def test_non_string_and_no_texts(spiece_model: Path) -> None:
    tok = Tokenizer(spiece_model)
    with pytest.raises(InputError, match="a string"):
        tok([3])
    with pytest.raises(InputError, match="no texts"):
        tok([])


def test_missing_or_corrupt_model_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        Tokenizer(tmp_path / "spiece.model")
    bad = tmp_path / "bad.model"
    bad.write_bytes(b"garbage")
    with pytest.raises(InputError, match=r"bad\.model"):
        Tokenizer(bad)


def test_train_tokenizer_round_trip(tmp_path: Path) -> None:
    corpus = ["The quick brown fox jumps over the lazy dog."] * 50 + ["A red apple on a table."] * 50
    path = train_tokenizer(corpus, tmp_path / "sp", vocab_size=40)
    tok = Tokenizer(path, max_len=12)
    assert path.is_file() and tok.vocab_size <= 40 + 4
    ids = tok("a quick red fox")[0].tolist()
    assert ids.count(tok.eos_id) >= 1 and tok.sp.unk_id() not in ids
    assert tok.sp.decode(tok.encode("The lazy dog!")) == "the lazy dog"


def test_train_tokenizer_on_empty_corpus_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="corpus"):
        train_tokenizer(["", "   "], tmp_path / "sp", vocab_size=40)
