"""Byte-level BPE tokenization (RoBERTa's, as CLAP's text tower reads it) through the `tokenizers` library and
a checkpoint's tokenizer.json: ids identical to transformers' fast tokenizer with `padding="max_length",
truncation=True, max_length=max_len` (<s> … </s>, then the pad id)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from omnibind.errors import InputError
from omnibind.preprocess.text import TokenIds

ASSET_NAME = "tokenizer.json"


class BPETokenizer(TokenIds):
    """Callable: a string or list of strings → (B, max_len) int64 ids, padded with `pad_id` and truncated on
    the right with the special tokens kept, as transformers' RobertaTokenizerFast does."""

    asset_name = ASSET_NAME  # the name checkpoints save the file under

    def __init__(self, tokenizer_file: str | Path, max_len: int = 77, pad_id: int = 1) -> None:
        from tokenizers import Tokenizer

        self.model_file = Path(tokenizer_file)
        if not self.model_file.is_file():
            raise InputError(self.model_file, "tokenizer file not found", f"a `tokenizers` {ASSET_NAME}")
        try:
            self.tokenizer = Tokenizer.from_file(str(self.model_file))
        except Exception as err:  # the library raises a bare Exception for malformed files
            raise InputError(self.model_file, f"cannot load tokenizer ({err})", f"a `tokenizers` {ASSET_NAME}") from err
        pad_token = self.tokenizer.id_to_token(pad_id)
        if pad_token is None:
            raise InputError(self.model_file, f"has no token with the pad id {pad_id}", "the text tower's pad id")
        self.max_len, self.pad_id = max_len, pad_id
        self.tokenizer.enable_truncation(max_length=max_len, strategy="longest_first", direction="right")
        self.tokenizer.enable_padding(direction="right", pad_id=pad_id, pad_token=pad_token, length=max_len)

    @property
    def vocab_size(self) -> int:
        """Number of tokens, added special tokens included."""
        return int(self.tokenizer.get_vocab_size(with_added_tokens=True))

    def __call__(self, texts: str | Sequence[str]) -> torch.Tensor:
        texts = self.checked(texts)
        encodings = self.tokenizer.encode_batch(texts, add_special_tokens=True)
        return torch.tensor([e.ids for e in encodings], dtype=torch.long)
