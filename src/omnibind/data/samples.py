"""One example on its way from storage to a batch: a key and its fields, named by extension as in
WebDataset (`jpg`, `png`, `flac`, `txt`, `json`, ...). Manifest entries point at files read on demand."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from omnibind.data.skips import FILE_MISSING, MANIFEST_LINE_INVALID, SampleSkip
from omnibind.media import AUDIO_EXTS, IMAGE_EXTS

TEXT_EXT = "txt"
META_EXT = "json"
MODALITY_EXTS: dict[str, tuple[str, ...]] = {"image": IMAGE_EXTS, "audio": AUDIO_EXTS, "text": (TEXT_EXT,)}
# Canonical spellings written into shards (the field's standard keys).
CANONICAL_EXT = {"jpeg": "jpg", "tif": "tiff", "oga": "ogg"}


def is_url(path: str) -> bool:
    """True for fsspec URLs (`s3://...`, `memory://...`); plain paths and `file://` paths are local."""
    return "://" in path and not path.startswith("file://")


def local_path(path: str) -> str:
    """A `file://` URL or plain path as a filesystem path."""
    return path[len("file://") :] if path.startswith("file://") else path


@dataclass(frozen=True)
class FileRef:
    """A file a manifest entry points at; read only when the sample is decoded (resume skips unread)."""

    path: str
    key: str

    def read(self) -> bytes:
        """The file's bytes; a missing or unreadable file skips the sample."""
        try:
            if is_url(self.path):
                import fsspec

                with fsspec.open(self.path, "rb") as handle:
                    return handle.read()
            return Path(local_path(self.path)).read_bytes()
        except (OSError, ValueError) as err:
            raise SampleSkip(FILE_MISSING, self.key, f"{self.path}: {err.__class__.__name__}") from err


@dataclass
class RawSample:
    """A sample as stored: `fields` maps an extension to its bytes (tar) or to a FileRef (manifest)."""

    key: str
    fields: dict[str, bytes | FileRef]

    def materialize(self) -> RawSample:
        """The sample itself (a ManifestLine parses into one)."""
        return self

    def field_for(self, modality: str) -> str | None:
        """The extension that holds `modality` (first by preference), or None when absent."""
        return next((ext for ext in MODALITY_EXTS[modality] if ext in self.fields), None)

    def read(self, ext: str) -> bytes:
        """Bytes of one field."""
        value = self.fields[ext]
        return value.read() if isinstance(value, FileRef) else value


@dataclass(frozen=True)
class ManifestLine:
    """One JSONL manifest line, parsed only when decoded so that a bad line is skipped, not fatal."""

    manifest: str
    lineno: int
    text: str

    @property
    def key(self) -> str:
        """Default key: manifest stem and line number."""
        return f"{Path(local_path(self.manifest)).stem}-{self.lineno:06d}"

    def materialize(self) -> RawSample:
        """Parse `{"image": path, "audio": path, "text": str, "meta": {...}, "key": str}` into fields."""
        where = f"{self.manifest}:{self.lineno}"
        try:
            entry = json.loads(self.text)
        except json.JSONDecodeError as err:
            raise SampleSkip(MANIFEST_LINE_INVALID, where, f"not JSON: {err.msg}") from err
        if not isinstance(entry, dict):
            raise SampleSkip(MANIFEST_LINE_INVALID, where, "expected a JSON object")
        key = str(entry.get("key") or self.key)
        fields: dict[str, bytes | FileRef] = {}
        for modality in ("image", "audio"):
            path = entry.get(modality)
            if path is None:
                continue
            if not isinstance(path, str) or not path:
                raise SampleSkip(MANIFEST_LINE_INVALID, where, f"{modality!r} must be a file path")
            fields[extension_of(path, where)] = FileRef(resolve(path, self.manifest), key)
        text = entry.get("text")
        if text is not None:
            if not isinstance(text, str):
                raise SampleSkip(MANIFEST_LINE_INVALID, where, "'text' must be a string")
            fields[TEXT_EXT] = text.encode("utf-8")
        if "meta" in entry:
            fields[META_EXT] = json.dumps(entry["meta"], ensure_ascii=False, sort_keys=True).encode("utf-8")
        return RawSample(key, fields)


def extension_of(path: str, where: str) -> str:
    """The canonical field name for a media file, from its suffix."""
    suffix = os.path.splitext(path)[1].lower().lstrip(".")
    suffix = CANONICAL_EXT.get(suffix, suffix)
    if suffix not in IMAGE_EXTS and suffix not in AUDIO_EXTS:
        raise SampleSkip(MANIFEST_LINE_INVALID, where, f"{path}: unknown media suffix {suffix!r}")
    return suffix


def resolve(path: str, manifest: str) -> str:
    """Relative paths in a manifest are relative to the manifest's folder (or URL prefix)."""
    if is_url(path) or os.path.isabs(local_path(path)):
        return path
    if is_url(manifest):
        return manifest.rsplit("/", 1)[0] + "/" + path
    return str(Path(local_path(manifest)).parent / path)
