"""Prompt and caption ids of a generator trained by omnibind: the text tower's SentencePiece vocabulary (so a
batch's text ids are the captions' targets as they are) plus one BOS id after it, since omnibind's tokenizers
have none (pad 0, eos 1, unk 2). Beside PaliGemma's `PromptTokenizer`, both satisfy `Prompts`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from omnibind.errors import InputError
from omnibind.preprocess.text import Tokenizer

PAD_ID, EOS_ID = 0, 1
"""The ids omnibind's SentencePiece tokenizers pad and end with (`preprocess.text.train_tokenizer`)."""


class Prompts(Protocol):
    """What a Generator reads prompts and writes text with."""

    bos_id: int
    eos_id: int

    def prompt_ids(self, prompt: str) -> list[int]:
        """The prompt part of the prefix."""
        ...

    def suffix_ids(self, text: str) -> list[int]:
        """A target text's ids, EOS last."""
        ...

    def decode(self, ids: Sequence[int]) -> str:
        """Text of generated ids, special tokens dropped."""
        ...

    def __len__(self) -> int:
        """Vocabulary size, special tokens included."""
        ...


def vocab_size(text_vocab: int) -> int:
    """The decoder's vocabulary for a text tower of `text_vocab` pieces: those, then BOS."""
    return text_vocab + 1


class SentencePiecePrompts:
    """Prompt text → [BOS] + its pieces (canonicalised as the text tower reads text); ids → text. `tokenizer` may
    be None (synthetic training): prompts are then BOS alone and nothing can be decoded to text."""

    def __init__(self, tokenizer: Tokenizer | None, text_vocab: int) -> None:
        if tokenizer is not None and tokenizer.vocab_size > text_vocab:
            raise InputError("towers.text.vocab_size", f"is {text_vocab}",
                             f"at least the tokenizer's {tokenizer.vocab_size} pieces ({tokenizer.model_file})")
        self.tokenizer = tokenizer
        self.text_vocab = text_vocab
        self.bos_id, self.eos_id, self.pad_id = text_vocab, EOS_ID, PAD_ID

    @property
    def path(self) -> Path | None:
        """The SentencePiece model file (None without a tokenizer)."""
        return None if self.tokenizer is None else self.tokenizer.model_file

    def __len__(self) -> int:
        return vocab_size(self.text_vocab)

    def prompt_ids(self, prompt: str) -> list[int]:
        """BOS, then the prompt's pieces (none for an empty prompt)."""
        if not isinstance(prompt, str):
            raise InputError("prompt", f"got {type(prompt).__name__}", "a string")
        if not prompt.strip():
            return [self.bos_id]
        return [self.bos_id, *self._need().encode(prompt)]

    def suffix_ids(self, text: str) -> list[int]:
        """A caption's pieces, then EOS (as the text tower's ids, without their padding)."""
        return [*self._need().encode(text), self.eos_id]

    def decode(self, ids: Sequence[int]) -> str:
        """The text of generated ids; special ids (pad, EOS, BOS) dropped."""
        special = {self.pad_id, self.eos_id, self.bos_id}
        return str(self._need().sp.decode([int(i) for i in ids if int(i) not in special]))

    def _need(self) -> Tokenizer:
        if self.tokenizer is None:
            raise InputError("tokenizer", "this generator has no SentencePiece tokenizer",
                             "a checkpoint with spiece.model (model.tokenizer when training)")
        return self.tokenizer
