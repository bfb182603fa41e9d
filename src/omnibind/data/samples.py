"""One example on its way from storage to a batch: a key and its fields, named by extension as in
WebDataset (`jpg`, `png`, `flac`, `txt`, `json`, ...). Manifest entries point at files read on demand.
Which field holds which modality comes from the registry (`Modality.field_names`)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import omnibind.modalities as registry
from omnibind.data.skips import FILE_MISSING, MANIFEST_LINE_INVALID, SampleSkip
from omnibind.modalities import Modality

META_EXT = "json"


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
        """The field that holds `modality` (first by the modality's preference), or None when absent."""
        return next((name for name in registry.get(modality).field_names() if name in self.fields), None)

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
        """Parse `{"image": path, "audio": path, "text": str, "meta": {...}, "key": str}` into fields: a
        media modality's name (any registered one) keys a file path, another modality's keys its value."""
        where = f"{self.manifest}:{self.lineno}"
        try:
            entry = json.loads(self.text)
        except json.JSONDecodeError as err:
            raise SampleSkip(MANIFEST_LINE_INVALID, where, f"not JSON: {err.msg}") from err
        if not isinstance(entry, dict):
            raise SampleSkip(MANIFEST_LINE_INVALID, where, "expected a JSON object")
        key = str(entry.get("key") or self.key)
        fields: dict[str, bytes | FileRef] = {}
        for modality in registry.all_modalities():
            value = entry.get(modality.name)
            if value is None:
                continue
            if modality.is_media:
                path = _file_path(value, modality, where)
                fields[extension_of(path, where, modality)] = FileRef(resolve(path, self.manifest), key)
            else:
                fields[modality.field_names()[0]] = _inline_value(value, modality, where)
        if "meta" in entry:
            fields[META_EXT] = json.dumps(entry["meta"], ensure_ascii=False, sort_keys=True).encode("utf-8")
        return RawSample(key, fields)


def _file_path(value: Any, modality: Modality, where: str) -> str:
    """A manifest's value for a media modality, which must be a non-empty path."""
    if not isinstance(value, str) or not value:
        raise SampleSkip(MANIFEST_LINE_INVALID, where, f"{modality.name!r} must be a file path")
    return value


def _inline_value(value: Any, modality: Modality, where: str) -> bytes:
    """A manifest's inline value (a caption) as the bytes a shard stores for it."""
    if not isinstance(value, str):
        raise SampleSkip(MANIFEST_LINE_INVALID, where, f"{modality.name!r} must be a string")
    return value.encode("utf-8")


def extension_of(path: str, where: str, modality: Modality | None = None) -> str:
    """The canonical field name for a media file, from its suffix (jpeg → jpg, as the modality spells it);
    with `modality`, the suffix must be one of that modality's."""
    suffix = os.path.splitext(path)[1].lower().lstrip(".")
    owner = registry.for_extension(suffix) if suffix else None
    if owner is None:
        raise SampleSkip(MANIFEST_LINE_INVALID, where, f"{path}: unknown media suffix {suffix!r}")
    if modality is not None and owner.name != modality.name:
        raise SampleSkip(MANIFEST_LINE_INVALID, where, f"{path}: a {owner.name} file under {modality.name!r}, "
                         f"expected one of .{', .'.join(modality.extensions)}")
    return owner.canonical_extensions.get(suffix, suffix)


def resolve(path: str, manifest: str) -> str:
    """Relative paths in a manifest are relative to the manifest's folder (or URL prefix)."""
    if is_url(path) or os.path.isabs(local_path(path)):
        return path
    if is_url(manifest):
        return manifest.rsplit("/", 1)[0] + "/" + path
    return str(Path(local_path(manifest)).parent / path)
