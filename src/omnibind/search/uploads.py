"""Checks on an uploaded query file before it reaches a decoder: size, content type, and a header that its
modality accepts (each modality's `check_header` refuses undecodable or oversized files). Which modality an
upload holds comes from the registry: a declared `image/*` or `audio/*` type names it, and an untyped upload
(`application/octet-stream`) is typed by its file name's extension or, failing that, by its header. Each
failure is an UploadError carrying its HTTP status."""

from __future__ import annotations

from collections.abc import Iterable

import omnibind.modalities as registry
from omnibind.errors import UploadError
from omnibind.modalities import Modality
from omnibind.search.query import one_of

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
GENERIC_TYPES = frozenset({"", "application/octet-stream"})
# MIME top-level types: a media modality of one of these names is named by the declared content type.
MIME_FAMILIES = frozenset({"application", "audio", "font", "image", "model", "text", "video"})

__all__ = ["MAX_UPLOAD_BYTES", "UploadError", "accepted_types", "expected_upload", "noun", "upload_modality"]


def noun(modality: Modality) -> str:
    """How messages name one file of this modality: "a picture", "a sound", "a depth file"."""
    return modality.item_noun()


def expected_upload() -> str:
    """What a valid upload is, for error messages: each media modality's own description."""
    return "; or ".join(m.expected for m in registry.media()) or "a media file"


def accepted_types() -> list[str]:
    """The content types an upload may declare: `<modality>/*` where that is a MIME type, or an untyped one."""
    return [f"{m}/*" for m in registry.media_names() if m in MIME_FAMILIES] + ["application/octet-stream"]


def upload_modality(data: bytes, content_type: str | None, filename: str | None, field: str = "file",
                    max_bytes: int = MAX_UPLOAD_BYTES) -> str:
    """The media modality of an uploaded file ("image", "audio", ...), after checking its size, declared type
    and header."""
    if not data:
        raise UploadError(422, field, "empty upload (0 bytes)", expected_upload())
    if len(data) > max_bytes:
        raise UploadError(413, field, f"upload of {len(data)} bytes is over the limit", f"at most {max_bytes} bytes")
    modality = _declared_or_sniffed(data, content_type, filename, field)
    modality.check_header(data, field)
    return modality.name


def _declared_or_sniffed(data: bytes, content_type: str | None, filename: str | None, field: str) -> Modality:
    """The modality a content type names, or for an untyped upload the one its extension or header names."""
    kind = (content_type or "").split(";")[0].strip().lower()
    family = kind.split("/")[0]
    media = {m.name: m for m in registry.media()}
    if family in media and family in MIME_FAMILIES:
        return media[family]
    if kind not in GENERIC_TYPES:
        raise UploadError(415, field, f"content type {kind!r} is not accepted",
                          f"{one_of(accepted_types())}: {expected_upload()}")
    by_name = registry.modality_of(filename or "")
    found = media.get(by_name) if by_name is not None else registry.sniff(data)
    if found is None:
        raise UploadError(415, field, f"{_neither(media.values())} (no registered modality recognises its header)",
                          expected_upload())
    return found


def _neither(media: Iterable[Modality]) -> str:
    """What an unrecognised upload is not: "neither a picture nor a sound"."""
    nouns = [noun(m) for m in media]
    if len(nouns) == 1:
        return f"not {nouns[0]}"
    return "neither " + " nor ".join(nouns)
