"""Checks on an uploaded query file before it reaches a decoder: size, content type, and a header that
names a picture or a sound of sane dimensions. Each failure is an InputError carrying its HTTP status."""

from __future__ import annotations

import io

import soundfile
from PIL import Image, UnidentifiedImageError

from omnibind.errors import InputError
from omnibind.media import modality_of

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
MAX_PIXELS = 40_000_000  # decoded RGB at most ~120 MB
MAX_AUDIO_SECONDS = 600.0
GENERIC_TYPES = frozenset({"", "application/octet-stream"})
EXPECTED = "an image (PNG, JPEG, WebP, GIF, BMP, TIFF) or a sound (WAV, FLAC, OGG, MP3)"


class UploadError(InputError):
    """An InputError with the HTTP status the service answers it with."""

    def __init__(self, status_code: int, source: str, problem: str, expected: str | None = None) -> None:
        super().__init__(source, problem, expected)
        self.status_code = status_code


def upload_modality(data: bytes, content_type: str | None, filename: str | None, field: str = "file",
                    max_bytes: int = MAX_UPLOAD_BYTES) -> str:
    """"image" or "audio" for an uploaded file, after checking its size, declared type and header."""
    if not data:
        raise UploadError(422, field, "empty upload (0 bytes)", EXPECTED)
    if len(data) > max_bytes:
        raise UploadError(413, field, f"upload of {len(data)} bytes is over the limit", f"at most {max_bytes} bytes")
    kind = (content_type or "").split(";")[0].strip().lower()
    family = kind.split("/")[0]
    if family in ("image", "audio"):
        modality = family
    elif kind in GENERIC_TYPES:
        modality = modality_of(filename or "") or sniff(data)
        if modality is None:
            raise UploadError(415, field, "neither a picture nor a sound Pillow or libsndfile recognises", EXPECTED)
    else:
        raise UploadError(415, field, f"content type {kind!r} is not accepted", f"image/* or audio/*: {EXPECTED}")
    check_header(data, modality, field)
    return modality


def sniff(data: bytes) -> str | None:
    """Guess the modality of untyped bytes from their header."""
    try:
        with Image.open(io.BytesIO(data)):
            return "image"
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        pass
    try:
        soundfile.info(io.BytesIO(data))
        return "audio"
    except (soundfile.SoundFileError, RuntimeError, ValueError, TypeError, OSError, EOFError):
        return None


def check_header(data: bytes, modality: str, field: str) -> None:
    """Read only the header: refuse undecodable files, images over MAX_PIXELS and sounds over MAX_AUDIO_SECONDS."""
    if modality == "image":
        try:
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
            raise UploadError(422, field, f"cannot decode image ({_reason(err)})", EXPECTED) from err
        if width * height > MAX_PIXELS:
            raise UploadError(413, field, f"image of {width}×{height} pixels is too large",
                              f"at most {MAX_PIXELS // 1_000_000} megapixels")
        return
    try:
        info = soundfile.info(io.BytesIO(data))
    except (soundfile.SoundFileError, RuntimeError, ValueError, TypeError, OSError, EOFError) as err:
        raise UploadError(422, field, f"cannot decode audio ({_reason(err)})", EXPECTED) from err
    if info.frames <= 0:
        raise UploadError(422, field, "audio has no samples", "a sound of at least one sample")
    if info.duration > MAX_AUDIO_SECONDS:
        raise UploadError(413, field, f"sound of {info.duration:.0f} s is too long",
                          f"at most {MAX_AUDIO_SECONDS:.0f} s")


def _reason(err: Exception) -> str:
    """A decoder's message without the in-memory file object's repr."""
    if isinstance(err, UnidentifiedImageError):
        return "not a recognised image format"
    detail = str(getattr(err, "error_string", "") or err).strip()
    return "not a recognised audio format" if detail.startswith(("File does not exist", "Error opening")) else detail
