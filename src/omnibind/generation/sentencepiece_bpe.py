"""A Gemma `tokenizer.model` (SentencePiece BPE with byte fallback) as a `tokenizers` Tokenizer, built the way
transformers 5 builds its GemmaTokenizer from that file alone: the vocabulary is the model's pieces by id, the
merges are every split of a piece into two pieces, ranked by the merged piece's id (transformers'
`generate_merges`), spaces become "▁" before BPE, and control and user-defined pieces are added tokens (control
ones special) so that they are matched on the raw text. The special tokens that tokenizer_config.json names (and
its `added_tokens_decoder`) are added after the pieces, as transformers adds them. The `tokenizers` library then
does the tokenization; nothing here splits text."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tokenizers import AddedToken, Tokenizer, decoders, normalizers, pre_tokenizers
from tokenizers.models import BPE

from omnibind.errors import CheckpointError

BPE_TYPE, CONTROL, USER_DEFINED = 2, 3, 4
"""SentencePiece's ModelType.BPE and its piece types CONTROL and USER_DEFINED (sentencepiece_model.proto)."""
SPECIAL_KEYS = (("bos_token", "<bos>"), ("eos_token", "<eos>"), ("unk_token", "<unk>"), ("pad_token", "<pad>"),
                ("mask_token", "<mask>"))
"""GemmaTokenizer's special tokens with its defaults, in the order transformers adds those the vocabulary lacks."""


def read_proto(path: Path) -> Any:
    """The parsed SentencePiece ModelProto of a .model file."""
    from sentencepiece import sentencepiece_model_pb2

    proto = sentencepiece_model_pb2.ModelProto()  # type: ignore[attr-defined]  # generated protobuf code
    try:
        proto.ParseFromString(path.read_bytes())
    except Exception as err:  # protobuf's DecodeError, or an unreadable file
        raise CheckpointError(f"{path}: cannot read the SentencePiece model ({err})") from err
    if not proto.pieces:
        raise CheckpointError(f"{path}: a SentencePiece model without pieces (expected Gemma's tokenizer.model)")
    return proto


def merges_of(vocab: Mapping[str, int]) -> list[tuple[str, str]]:
    """Every (left, right) split of a piece into two pieces, ordered by the merged piece's id, then by the lengths
    of the left and right parts (within one piece: by the parts' ids), as transformers' `generate_merges` orders
    them for a vocabulary without scores."""
    found: list[tuple[str, str, int]] = []
    for merged, rank in vocab.items():
        local = [(merged[:i], merged[i:], rank) for i in range(1, len(merged))
                 if merged[:i] in vocab and merged[i:] in vocab]
        found.extend(sorted(local, key=lambda m: (vocab[m[0]], vocab[m[1]])))
    found.sort(key=lambda m: (m[2], len(m[0]), len(m[1])))
    return [(left, right) for left, right, _ in found]


def tokenizer_from_model(path: str | Path, settings: Mapping[str, Any] | None = None) -> Tokenizer:
    """The `tokenizers` Tokenizer transformers' GemmaTokenizer builds from `path` (a tokenizer.model) and the
    folder's tokenizer_config.json `settings` (special tokens, `added_tokens_decoder`)."""
    path = Path(path)
    proto = read_proto(path)
    if proto.trainer_spec.model_type != BPE_TYPE:
        raise CheckpointError(f"{path}: a SentencePiece model of type {proto.trainer_spec.model_type} "
                              f"(expected {BPE_TYPE}, BPE, as Gemma's tokenizer is)")
    vocab = {piece.piece: i for i, piece in enumerate(proto.pieces)}
    settings = settings or {}
    unk = _content(settings.get("unk_token"), "<unk>")
    tokenizer = Tokenizer(BPE(vocab=vocab, merges=merges_of(vocab), fuse_unk=True, unk_token=unk, dropout=None,
                              byte_fallback=True))
    tokenizer.normalizer = normalizers.Replace(" ", "▁")
    tokenizer.pre_tokenizer = pre_tokenizers.Split(pattern=" ", behavior="merged_with_previous", invert=False)
    tokenizer.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()])
    _add_declared(tokenizer, settings.get("added_tokens_decoder") or {}, path)
    for key, default in SPECIAL_KEYS:
        token = _content(settings.get(key), default)
        if tokenizer.token_to_id(token) is None or token in vocab:
            tokenizer.add_special_tokens([AddedToken(token, normalized=False, special=True)])
    for piece in proto.pieces:  # control pieces (special) and user-defined ones, matched on the raw text
        if piece.type in (CONTROL, USER_DEFINED):
            special = piece.type == CONTROL
            added = AddedToken(piece.piece, normalized=False, special=special)
            (tokenizer.add_special_tokens if special else tokenizer.add_tokens)([added])
    return tokenizer


def _add_declared(tokenizer: Tokenizer, declared: Mapping[str, Any], path: Path) -> None:
    """tokenizer_config.json's `added_tokens_decoder` ({id: {content, special, ...}}), each at its stated id."""
    for key in sorted(declared, key=int):
        spec = declared[key]
        if not isinstance(spec, Mapping) or not isinstance(spec.get("content"), str):
            raise CheckpointError(f"tokenizer_config.json: added_tokens_decoder[{key}] is {spec!r} "
                                  "(expected {content, special, ...})")
        token = AddedToken(spec["content"], special=bool(spec.get("special", False)),
                           normalized=bool(spec.get("normalized", False)), lstrip=bool(spec.get("lstrip", False)),
                           rstrip=bool(spec.get("rstrip", False)), single_word=bool(spec.get("single_word", False)))
        have = tokenizer.token_to_id(spec["content"])
        size = tokenizer.get_vocab_size(with_added_tokens=True)
        if have is None and int(key) != size:
            raise CheckpointError(f"tokenizer_config.json: added token {spec['content']!r} at id {key}, but "
                                  f"{path.name} with the tokens before it ends at id {size - 1}")
        if have is not None and have != int(key):
            raise CheckpointError(f"tokenizer_config.json: added token {spec['content']!r} at id {key}, but "
                                  f"{path.name} gives it id {have}")
        (tokenizer.add_special_tokens if token.special else tokenizer.add_tokens)([token])


def _content(value: Any, default: str) -> str:
    """A special token's text: a string, or an AddedToken dict with "content"."""
    if isinstance(value, Mapping):
        value = value.get("content")
    return value if isinstance(value, str) else default
