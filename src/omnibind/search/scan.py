"""Find media files under a folder and describe one file (hash, image size, audio duration)."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from stat import S_ISREG

import soundfile
from PIL import Image, UnidentifiedImageError

from omnibind.errors import InputError
from omnibind.media import modality_of
from omnibind.search.store import MediaInfo


@dataclass(frozen=True)
class FoundFile:
    """A media file seen by the walk: absolute path, modality and the stat values change detection uses."""

    path: str
    modality: str
    size: int
    mtime_ns: int


def walk_media(root: Path, skip: Collection[Path] = ()) -> Iterator[FoundFile]:
    """Image and audio files under `root`, in sorted order; hidden entries, `skip` folders and symbolic links
    to folders are not entered, and empty files are left out (they hold no media)."""
    skipped = {os.fspath(p.resolve()) for p in skip}
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and os.path.join(folder, d) not in skipped)
        for name in sorted(files):
            modality = modality_of(name)
            if modality is None or name.startswith("."):
                continue
            path = os.path.join(folder, name)
            try:
                info = os.stat(path)
            except OSError:
                continue  # vanished or a dangling link
            if info.st_size > 0 and S_ISREG(info.st_mode):
                yield FoundFile(path, modality, info.st_size, info.st_mtime_ns)


def describe(found: FoundFile, data: bytes) -> MediaInfo:
    """Metadata of one file from its bytes: content hash plus image dimensions or audio duration."""
    digest = hashlib.sha256(data).hexdigest()
    base = dict(path=found.path, modality=found.modality, size=found.size, mtime_ns=found.mtime_ns, sha256=digest)
    if found.modality == "image":
        return MediaInfo(**base, **image_size(data, found.path))
    return MediaInfo(**base, **audio_details(data, found.path))


def image_size(data: bytes, name: str) -> dict[str, int]:
    """Width and height from the image header (no full decode)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
    except UnidentifiedImageError as err:
        raise InputError(name, "not a recognised image format", "an image file Pillow can decode") from err
    except (OSError, SyntaxError, ValueError) as err:
        raise InputError(name, f"cannot read image header ({err})", "an image file Pillow can decode") from err
    return {"width": int(width), "height": int(height)}


def audio_details(data: bytes, name: str) -> dict[str, float | int]:
    """Duration in seconds, sample rate and channel count from the audio header."""
    try:
        info = soundfile.info(io.BytesIO(data))
    except (soundfile.SoundFileError, RuntimeError, ValueError, TypeError, OSError, EOFError) as err:
        raise InputError(name, f"cannot read audio header ({err})", "an audio file libsndfile can decode") from err
    return {"duration": float(info.duration), "sample_rate": int(info.samplerate), "channels": int(info.channels)}
