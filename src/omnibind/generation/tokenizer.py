"""PaliGemma's prompt tokenization through the `tokenizers` library: [BOS] prompt "\n", ids identical to
transformers' PaliGemmaProcessor (which adds <image>, <locNNNN> and <segNNN> tokens when the file lacks them)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tokenizers import AddedToken, Tokenizer

from omnibind.errors import CheckpointError, InputError

IMAGE_TOKEN = "<image>"
EXTRA_TOKENS = [f"<loc{i:0>4}>" for i in range(1024)] + [f"<seg{i:0>3}>" for i in range(128)]


class PromptTokenizer:
    """Prompt text → prefix ids ([BOS] prompt "\\n"); generated ids → text, special tokens dropped."""

    def __init__(self, path: str | Path, bos_token: str = "<bos>", eos_token: str = "<eos>") -> None:
        self.path = Path(path)
        try:
            self.tokenizer = Tokenizer.from_file(str(self.path))
        except Exception as err:  # the library raises a bare Exception for unreadable or malformed files
            raise CheckpointError(f"{self.path}: cannot read the tokenizer ({err})") from err
        if self.tokenizer.token_to_id(IMAGE_TOKEN) is None:
            self.tokenizer.add_special_tokens([AddedToken(IMAGE_TOKEN, normalized=False, special=True)])
        missing = [t for t in EXTRA_TOKENS if self.tokenizer.token_to_id(t) is None]
        if missing:
            self.tokenizer.add_tokens(missing)
        self.bos_token = bos_token
        self.bos_id = self._id(bos_token)
        self.eos_id = self._id(eos_token)
        self.image_id = self._id(IMAGE_TOKEN)

    def _id(self, token: str) -> int:
        found = self.tokenizer.token_to_id(token)
        if found is None:
            raise CheckpointError(f"{self.path}: has no {token!r} token (expected a Gemma tokenizer)")
        return int(found)

    def __len__(self) -> int:
        """Vocabulary size including added tokens."""
        return int(self.tokenizer.get_vocab_size(with_added_tokens=True))

    def prompt_ids(self, prompt: str) -> list[int]:
        """The prompt part of PaliGemma's prefix: BOS, the prompt's tokens, then the "\\n" separator."""
        if not isinstance(prompt, str):
            raise InputError("prompt", f"got {type(prompt).__name__}", "a string")
        ids = self.tokenizer.encode(self.bos_token + prompt + "\n", add_special_tokens=False).ids
        return [int(i) for i in ids]

    def suffix_ids(self, text: str) -> list[int]:
        """A target text as PaliGemma trains on it: its tokens, then EOS."""
        return [int(i) for i in self.tokenizer.encode(text, add_special_tokens=False).ids] + [self.eos_id]

    def decode(self, ids: Sequence[int]) -> str:
        """Text of generated ids, special tokens (EOS, padding) dropped."""
        return str(self.tokenizer.decode(list(ids), skip_special_tokens=True))
