"""The byte-level BPE tokenizer (CLAP's RoBERTa text tower): ids identical to transformers' RoBERTa tokenizer
with `padding="max_length", truncation=True`, built from a tiny BPE trained here; clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from omnibind.errors import InputError
from omnibind.preprocess.bpe import BPETokenizer

transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

CORPUS = ["a dog barks twice in the distance", "rain falling on a tin roof", "a slow piano melody",
          "Glass breaks; someone gasps!", "birds singing at dawn, then silence"]
TEXTS = [
    "a dog barks", "  leading and trailing spaces  ", "Ünïcode wörds — 音 and emoji 🎹",
    "rain falling on a tin roof, " * 20,  # far past max_len: truncated with </s> kept
    "<mask> and <s> are special tokens", "tabs\tand\nnewlines",
]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bpe")
    bpe = tokenizers.ByteLevelBPETokenizer()
    bpe.train_from_iterator(CORPUS, vocab_size=350, min_frequency=1,
                            special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    bpe.save_model(str(out))
    transformers.RobertaTokenizer(vocab=str(out / "vocab.json"), merges=str(out / "merges.txt")).save_pretrained(out)
    return out


@pytest.mark.parametrize("max_len", [77, 12])
def test_ids_are_identical_to_transformers(folder: Path, max_len: int) -> None:
    reference = transformers.AutoTokenizer.from_pretrained(folder)
    ours = BPETokenizer(folder / "tokenizer.json", max_len=max_len, pad_id=reference.pad_token_id)
    expected = reference(TEXTS, padding="max_length", truncation=True, max_length=max_len, return_tensors="pt")
    got = ours(TEXTS)
    assert got.dtype == torch.int64 and got.shape == (len(TEXTS), max_len)
    assert torch.equal(got, expected.input_ids)
    assert got[3, -1] == reference.eos_token_id  # the truncated text still ends with </s>
    assert torch.equal(ours.one(TEXTS[0]), got[0]) and torch.equal(ours.batch(TEXTS[:2]), got[:2])
    assert ours.input_spec.shape == (max_len,) and ours.vocab_size == len(reference)


def test_bad_inputs_and_files_are_named(folder: Path, tmp_path: Path) -> None:
    ours = BPETokenizer(folder / "tokenizer.json")
    with pytest.raises(InputError, match="empty text"):
        ours(["fine", "  "])
    with pytest.raises(InputError, match="at least one"):
        ours([])
    with pytest.raises(InputError, match="not found"):
        BPETokenizer(tmp_path / "absent.json")
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(InputError, match="cannot load"):
        BPETokenizer(tmp_path / "broken.json")
    data = json.loads((folder / "tokenizer.json").read_text())
    (tmp_path / "t.json").write_text(json.dumps(data))
    with pytest.raises(InputError, match="pad id"):
        BPETokenizer(tmp_path / "t.json", pad_id=10**6)
