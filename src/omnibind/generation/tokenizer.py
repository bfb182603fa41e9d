"""PaliGemma's prompt tokenization through the `tokenizers` library: [BOS] prompt "\n", ids identical to
transformers' PaliGemmaProcessor (which adds <image>, <locNNNN> and <segNNN> tokens when the file lacks them).

The tokenizer is read from `tokenizer.json`, or from Gemma's SentencePiece `tokenizer.model` converted as
transformers converts it (`sentencepiece_bpe.py`). A prompt may hold one `<image>` placeholder: as in the
processor, the media tokens go there and BOS right after it (`<image>caption en` reads as `caption en`)."""

from __future__ import annotations

import shutil
import tempfile
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tokenizers import AddedToken, Tokenizer

from omnibind.errors import CheckpointError, InputError

IMAGE_TOKEN = "<image>"
EXTRA_TOKENS = [f"<loc{i:0>4}>" for i in range(1024)] + [f"<seg{i:0>3}>" for i in range(128)]
TOKENIZER_JSON = "tokenizer.json"


class PromptTokenizer:
    """Prompt text → prefix ids ([BOS] prompt "\\n", or the processor's layout around an `<image>` placeholder);
    generated ids → text, special tokens dropped.

    `path` is a tokenizer.json, or a SentencePiece tokenizer.model read with `settings` (tokenizer_config.json);
    `self.path` is then a tokenizer.json written on first use, which saving a generator copies."""

    def __init__(self, path: str | Path, bos_token: str = "<bos>", eos_token: str = "<eos>",
                 settings: Mapping[str, Any] | None = None) -> None:
        self.source = Path(path)
        self._json: Path | None = None
        try:
            if self.source.suffix == ".model":
                from omnibind.generation.sentencepiece_bpe import tokenizer_from_model

                self.tokenizer = tokenizer_from_model(self.source, settings)
            else:
                self._json = self.source
                self.tokenizer = Tokenizer.from_file(str(self.source))
        except CheckpointError:
            raise
        except Exception as err:  # the library raises a bare Exception for unreadable or malformed files
            raise CheckpointError(f"{self.source}: cannot read the tokenizer ({err})") from err
        if self.tokenizer.token_to_id(IMAGE_TOKEN) is None:
            self.tokenizer.add_special_tokens([AddedToken(IMAGE_TOKEN, normalized=False, special=True)])
        missing = [t for t in EXTRA_TOKENS if self.tokenizer.token_to_id(t) is None]
        if missing:
            self.tokenizer.add_tokens(missing)
        self.bos_token = bos_token
        self.bos_id = self._id(bos_token)
        self.eos_id = self._id(eos_token)
        self.image_id = self._id(IMAGE_TOKEN)

    @property
    def path(self) -> Path:
        """A tokenizer.json of this tokenizer: the file read, or (for a tokenizer.model) the converted tokenizer
        written once to a temporary folder removed with this object."""
        if self._json is None:
            folder = Path(tempfile.mkdtemp(prefix="omnibind-tokenizer-"))
            weakref.finalize(self, shutil.rmtree, folder, ignore_errors=True)
            self._json = folder / TOKENIZER_JSON
            self.tokenizer.save(str(self._json))
        return self._json

    def _id(self, token: str) -> int:
        found = self.tokenizer.token_to_id(token)
        if found is None:
            raise CheckpointError(f"{self.source}: has no {token!r} token (expected a Gemma tokenizer)")
        return int(found)

    def __len__(self) -> int:
        """Vocabulary size including added tokens."""
        return int(self.tokenizer.get_vocab_size(with_added_tokens=True))

    def prompt_ids(self, prompt: str) -> list[int]:
        """The prompt part of PaliGemma's prefix: BOS, the prompt's tokens, then the "\\n" separator. A prompt with
        an `<image>` placeholder is laid out as PaliGemmaProcessor lays it out: the text before it, the
        placeholder's one id (where the generator puts the media tokens), BOS, the rest, "\\n"."""
        if not isinstance(prompt, str):
            raise InputError("prompt", f"got {type(prompt).__name__}", "a string")
        count = prompt.count(IMAGE_TOKEN)
        if count > 1:
            raise InputError("prompt", f"has {count} {IMAGE_TOKEN} placeholders",
                             f"at most one (a prompt reads one picture; without {IMAGE_TOKEN} it opens the prefix)")
        end = prompt.find(IMAGE_TOKEN) + len(IMAGE_TOKEN) if count else 0
        text = prompt[:end] + self.bos_token + prompt[end:] + "\n"
        ids = self.tokenizer.encode(text, add_special_tokens=False).ids
        return [int(i) for i in ids]

    def suffix_ids(self, text: str) -> list[int]:
        """A target text as PaliGemma trains on it: its tokens, then EOS."""
        return [int(i) for i in self.tokenizer.encode(text, add_special_tokens=False).ids] + [self.eos_id]

    def decode(self, ids: Sequence[int]) -> str:
        """Text of generated ids, special tokens (EOS, padding) dropped."""
        return str(self.tokenizer.decode(list(ids), skip_special_tokens=True))
