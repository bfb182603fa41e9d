"""SentencePiece tokenization as SigLIP does it: canonicalise (lower-case, drop punctuation, squeeze
spaces), encode, keep a "sticky" EOS at the end, pad to the model's max length; plus tokenizer training."""

from __future__ import annotations

import re
import string
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from pathlib import Path

import sentencepiece as spm
import torch

from omnibind.errors import InputError
from omnibind.modalities.base import InputSpec

_PUNCTUATION = str.maketrans("", "", string.punctuation)
_SPACES = re.compile(r"\s+")
SPIECE_UNDERLINE = "▁"


def canonicalize(text: str, lower_case: bool = True) -> str:
    """SigLIP's text canonicalisation (as transformers' SiglipTokenizer.canonicalize_text)."""
    text = text.replace(SPIECE_UNDERLINE, " ")
    if lower_case:
        text = text.lower()
    return _SPACES.sub(" ", text.translate(_PUNCTUATION)).strip()


class TokenIds(ABC):
    """What every text tokenizer shares: the input checks and the Preprocessor protocol over `__call__`, which
    turns a list of texts into (B, max_len) int64 ids."""

    max_len: int

    @abstractmethod
    def __call__(self, texts: str | Sequence[str]) -> torch.Tensor:
        """(B, max_len) int64 ids of one text or several."""

    @staticmethod
    def checked(texts: str | Sequence[str]) -> list[str]:
        """The texts as a list, each a non-empty string, with an error naming the first that is not."""
        if isinstance(texts, str):
            texts = [texts]
        if len(texts) == 0:
            raise InputError("texts", "no texts given", "at least one string")
        for text in texts:
            check_text(text)
        return list(texts)

    @property
    def input_spec(self) -> InputSpec:
        """What `one` returns: (max_len,) int64 ids."""
        return InputSpec((int(self.max_len),), torch.int64)

    def one(self, text: str) -> torch.Tensor:
        """(max_len,) ids of one text (the Preprocessor protocol)."""
        return self([text])[0]

    def batch(self, texts: Sequence[str]) -> torch.Tensor:
        """(B, max_len) ids of several texts (the Preprocessor protocol)."""
        return self(list(texts))


def check_text(text: object) -> None:
    """Refuse a non-string or blank text with an error naming the field and what was expected."""
    if not isinstance(text, str):
        raise InputError("text", f"got {type(text).__name__}", "a string")
    if not text.strip():
        raise InputError("text", "empty text", "a non-empty string")


class Tokenizer(TokenIds):
    """Callable: a string or list of strings → (B, max_len) int64 ids, identical to SiglipTokenizer's
    `padding="max_length", truncation=True` output. Special-token strings in the text are plain text."""

    def __init__(
        self, model_file: str | Path, max_len: int = 64, lower_case: bool = True, pad_id: int | None = None
    ) -> None:
        self.model_file = Path(model_file)
        if not self.model_file.is_file():
            raise InputError(self.model_file, "tokenizer model not found", "a SentencePiece .model file")
        try:
            self.sp = spm.SentencePieceProcessor(model_file=str(self.model_file))
        except (RuntimeError, OSError) as err:
            raise InputError(self.model_file, f"cannot load tokenizer ({err})", "a SentencePiece .model") from err
        self.max_len = max_len
        self.lower_case = lower_case
        self.eos_id = self.sp.piece_to_id("</s>")
        if self.sp.id_to_piece(self.eos_id) != "</s>":
            raise InputError(self.model_file, "tokenizer has no '</s>' piece", "a SigLIP/T5-style SentencePiece")
        # SigLIP checkpoints pad with the EOS id; transformers' SiglipTokenizer does the same.
        self.pad_id = self.eos_id if pad_id is None else pad_id

    @property
    def vocab_size(self) -> int:
        """Number of pieces in the SentencePiece model."""
        return self.sp.get_piece_size()

    def encode(self, text: str) -> list[int]:
        """Ids of one text without EOS or padding; empty text is an error (it carries no meaning)."""
        check_text(text)
        return self.sp.encode(canonicalize(text, self.lower_case))

    def __call__(self, texts: str | Sequence[str]) -> torch.Tensor:
        texts = self.checked(texts)
        out = torch.full((len(texts), self.max_len), self.pad_id, dtype=torch.long)
        for row, text in enumerate(texts):
            ids = self.encode(text)[: self.max_len - 1] + [self.eos_id]
            out[row, : len(ids)] = torch.tensor(ids)
        return out



def train_tokenizer(
    corpus: Iterable[str], out_prefix: str | Path, vocab_size: int = 32000, lower_case: bool = True
) -> Path:
    """Train a SigLIP-style unigram SentencePiece model on canonicalised text; returns the .model path.

    Ids follow the T5/SigLIP layout (pad 0, eos 1, unk 2, no bos) so the model pads with EOS as SigLIP does.
    """
    out_prefix = Path(out_prefix)
    out_prefix.parent.mkdir(parents=True, exist_ok=True)
    lines = (c for c in (canonicalize(t, lower_case) for t in corpus) if c)
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=lines,
            model_prefix=str(out_prefix),
            vocab_size=vocab_size,
            model_type="unigram",
            pad_id=0,
            eos_id=1,
            unk_id=2,
            bos_id=-1,
            character_coverage=1.0,
            hard_vocab_limit=False,
            minloglevel=2,
        )
    except RuntimeError as err:
        raise InputError("corpus", f"tokenizer training failed ({err})", "a larger or more varied corpus") from err
    return Path(f"{out_prefix}.model")


class GemmaTokenizer(TokenIds):
    """SigLIP 2's text preprocessing, identical to transformers' Siglip2Tokenizer called as Siglip2Processor
    does (`padding="max_length", truncation=True, max_length=64`): the Gemma tokenizer.json (BPE with byte
    fallback) behind a lower-casing normaliser, at most max_len − 1 pieces, then `<eos>`, padded with `<pad>`
    on the right. Special-token strings in the text map to their ids, as in transformers."""

    asset_name = "tokenizer.json"  # the file name a checkpoint saves it under (the text modality reads it)

    def __init__(self, tokenizer_file: str | Path, max_len: int = 64, lower_case: bool = True,
                 eos_id: int | None = None, pad_id: int | None = None) -> None:
        from tokenizers import Tokenizer as Backend
        from tokenizers import normalizers

        self.model_file = Path(tokenizer_file)
        if not self.model_file.is_file():
            raise InputError(self.model_file, "tokenizer file not found", "a Gemma tokenizer.json")
        try:
            self.backend = Backend.from_file(str(self.model_file))
        except Exception as err:  # the tokenizers library raises bare Exceptions on malformed files
            raise InputError(self.model_file, f"cannot load tokenizer ({err})", "a Gemma tokenizer.json") from err
        self.backend.no_truncation()
        self.backend.no_padding()
        if lower_case:
            steps = [normalizers.Lowercase()] + ([self.backend.normalizer] if self.backend.normalizer else [])
            self.backend.normalizer = normalizers.Sequence(steps)
        self.max_len = max_len
        self.lower_case = lower_case
        self.eos_id = self._special(eos_id, "<eos>")
        self.pad_id = self._special(pad_id, "<pad>")

    def _special(self, given: int | None, piece: str) -> int:
        """`given`, else the id of `piece`; an error names the file when the tokenizer has no such piece."""
        if given is not None:
            return given
        found = self.backend.token_to_id(piece)
        if found is None:
            raise InputError(self.model_file, f"tokenizer has no {piece!r} token", "a Gemma tokenizer.json")
        return int(found)

    @property
    def vocab_size(self) -> int:
        """Number of tokens in the tokenizer, added tokens included."""
        return int(self.backend.get_vocab_size())

    def __call__(self, texts: str | Sequence[str]) -> torch.Tensor:
        texts = self.checked(texts)
        out = torch.full((len(texts), self.max_len), self.pad_id, dtype=torch.long)
        for row, encoding in enumerate(self.backend.encode_batch(texts, add_special_tokens=False)):
            ids = encoding.ids[: self.max_len - 1] + [self.eos_id]
            out[row, : len(ids)] = torch.tensor(ids)
        return out

