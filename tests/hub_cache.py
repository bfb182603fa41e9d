"""huggingface_hub's cache, written by hand, for tests that load hub ids with no network: a folder's files laid
out as huggingface_hub lays out a download (its documented cache layout, which `scan_cache_dir` and
`try_to_load_from_cache` read back), and the settings that point huggingface_hub at that cache, offline."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest


def put(cache: Path, repo_id: str, folder: Path, revision: str = "main") -> Path:
    """Store every file of `folder` in the cache `cache` (HF_HUB_CACHE) as repository `repo_id` at a commit
    of its own: `models--org--name/blobs/<sha256>` holds the bytes, `snapshots/<commit>/<file>` links to the
    blob (relative symlink, as huggingface_hub makes them), `refs/<revision>` names the commit. Returns the
    snapshot folder."""
    from huggingface_hub.file_download import repo_folder_name

    storage = cache / repo_folder_name(repo_id=repo_id, repo_type="model")
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    digest = hashlib.sha1(repo_id.encode())
    for path in files:
        digest.update(path.relative_to(folder).as_posix().encode() + hashlib.sha256(path.read_bytes()).digest())
    commit = digest.hexdigest()  # 40 hex digits, like a git commit
    snapshot = storage / "snapshots" / commit
    for path in files:
        data = path.read_bytes()
        blob = storage / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = snapshot / path.relative_to(folder)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (storage / "refs").mkdir(parents=True, exist_ok=True)
    (storage / "refs" / revision).write_text(commit)
    return snapshot


def offline_cache(monkeypatch: pytest.MonkeyPatch, home: Path) -> Path:
    """Point huggingface_hub at an empty cache under `home` (HF_HOME) with HF_HUB_OFFLINE=1: in this process
    (huggingface_hub reads both settings once, at import, into `huggingface_hub.constants`) and in the
    processes it starts (the environment). Returns the cache folder (HF_HUB_CACHE)."""
    from huggingface_hub import constants

    cache = home / "hub"
    cache.mkdir(parents=True, exist_ok=True)
    for name, value in (("HF_HOME", str(home)), ("HF_HUB_CACHE", str(cache)), ("HF_HUB_OFFLINE", "1")):
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(constants, "HF_HOME", str(home))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return cache
