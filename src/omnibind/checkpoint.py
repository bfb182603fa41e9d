"""Checkpoints: safetensors weights + a JSON config (+ spiece.model), written atomically; loading of
omnibind folders, transformers SigLIP folders and hub ids. Nothing is ever unpickled."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

import omnibind.modalities as registry
from omnibind.config import ModelConfig
from omnibind.convert import registry as converters
from omnibind.convert import siglip
from omnibind.errors import CheckpointError
from omnibind.fsutil import fsync_path
from omnibind.models.model import OmniBind
from omnibind.processors import build_processors

FORMAT = "omnibind"
FORMAT_VERSION = 2  # 2: embed_dim only in the model config, audio front end nested (1 still loads)
CONFIG_FILE, WEIGHTS_FILE, TOKENIZER_FILE = "config.json", "model.safetensors", "spiece.model"
GENERATOR_SECTION = "decoder"  # its presence in config.json makes the checkpoint a generator (towers + decoder)
HUB_FILES = [CONFIG_FILE, "*.safetensors", "model.safetensors.index.json", TOKENIZER_FILE, "*.json"]


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Write through a temporary file in the same folder, fsync it, then rename over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        fsync_path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_path(path.parent)


def asset_files(model: OmniBind) -> dict[str, Path]:
    """The files the model's preprocessors need (the tokenizer), by the name a checkpoint saves them under."""
    files: dict[str, Path] = {}
    for name, processor in model.processors.items():
        files.update(registry.get(name).asset_files(processor))
    return files


def save(model: OmniBind | nn.Module, folder: str | Path) -> Path:
    """Save weights, config and the preprocessors' files into `folder` (a Generator also its decoder section
    and prompt tokenizer); each file is replaced atomically."""
    from omnibind.generation.model import Generator

    if isinstance(model, Generator):
        from omnibind.generation.store import save_generator

        return save_generator(model, folder)
    return save_state(folder, model.config, model.state_dict(), asset_files(model))  # type: ignore[arg-type]


def save_state(folder: str | Path, config: ModelConfig, state: dict[str, torch.Tensor],
               assets: dict[str, Path] | None = None, sections: dict[str, Any] | None = None) -> Path:
    """Write a checkpoint from a config, a full state dict (e.g. gathered from sharded training), the
    preprocessors' files by the names they are saved under, and extra config sections (a generator's
    "decoder", which `load` dispatches on)."""
    folder = Path(folder)
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "model": config.to_dict(), **(sections or {})}
    tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    atomic_write(folder / WEIGHTS_FILE, lambda p: save_file(tensors, str(p), metadata={"format": "pt"}))
    for name, source in (assets or {}).items():
        data = Path(source).read_bytes()
        atomic_write(folder / name, lambda p, data=data: p.write_bytes(data))
    atomic_write(folder / CONFIG_FILE, lambda p: p.write_text(json.dumps(meta, indent=2)))
    return folder


def resolve(name_or_path: str | Path) -> Path:
    """A local folder as is; otherwise a hub id ("google/siglip-base-patch16-224") fetched with
    huggingface_hub's normal download path (its cache and HF_HUB_OFFLINE apply)."""
    path = Path(name_or_path)
    if path.exists():
        if not path.is_dir():
            raise CheckpointError(f"{path}: is a file (expected a checkpoint folder with {CONFIG_FILE})")
        return path
    name = str(name_or_path)
    if name.count("/") != 1 or name.startswith((".", "/")):
        raise CheckpointError(f"{name}: no such folder (expected a checkpoint folder or a hub id 'org/name')")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(name, allow_patterns=HUB_FILES))
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError, ValueError) as err:
        raise CheckpointError(f"{name}: cannot fetch from the hub or its cache ({err})") from err


def load(name_or_path: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype | None = None) -> Any:
    """Load an omnibind checkpoint or a foreign one that a converter in omnibind.convert reads (transformers
    SigLIP, ...), from a folder or hub id, with its preprocessors."""
    folder = resolve(name_or_path)
    meta = read_json(folder / CONFIG_FILE, required=True)
    if meta.get("format") == FORMAT and GENERATOR_SECTION in meta:
        from omnibind.generation.store import load_generator

        model = load_generator(folder, meta)
    elif meta.get("format") == FORMAT:
        config = ModelConfig.from_dict(meta["model"])
        model = OmniBind(config, build_processors(config, assets=present_assets(folder)))
        load_state(model, read_weights(folder), folder)
    else:
        model = converters.find(meta, folder / CONFIG_FILE).build(folder, meta)
    return model.to(device=device, dtype=dtype).eval()


def load_siglip(folder: Path, meta: dict[str, Any]) -> OmniBind:
    """A transformers SigLIP folder (config.json, safetensors, spiece.model) as an OmniBind model."""
    require(folder / TOKENIZER_FILE, "the SentencePiece tokenizer of a SigLIP checkpoint")
    config = siglip.config_from_hf(meta, read_json(folder / "preprocessor_config.json", required=False))
    model = OmniBind(config, build_processors(config, assets=present_assets(folder)))
    load_state(model, siglip.convert_state_dict(read_weights(folder)), folder)
    return model


def present_assets(folder: Path) -> dict[str, Path]:
    """The preprocessor files (e.g. spiece.model) a checkpoint folder has."""
    names = {TOKENIZER_FILE} | {name for m in registry.all_modalities() for name in m.asset_names}
    return {name: folder / name for name in names if (folder / name).is_file()}


def require(path: Path, what: str) -> None:
    """Raise a CheckpointError naming `path` and what it should be when the file is missing."""
    if not path.is_file():
        raise CheckpointError(f"{path}: missing (expected {what})")


def read_json(path: Path, required: bool) -> dict[str, Any]:
    """A JSON object from `path` ({} when absent and not required), with clear errors for bad files."""
    if not path.is_file():
        if required:
            raise CheckpointError(f"{path}: missing (expected the checkpoint's JSON config)")
        return {}
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{path}: not valid JSON ({err})") from err
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a JSON object")
    return data


def read_weights(folder: Path) -> dict[str, torch.Tensor]:
    """Read model.safetensors, or every shard named by model.safetensors.index.json."""
    index = folder / "model.safetensors.index.json"
    files = sorted(set(read_json(index, True)["weight_map"].values())) if index.is_file() else [WEIGHTS_FILE]
    state: dict[str, torch.Tensor] = {}
    for name in files:
        path = folder / name
        require(path, "safetensors weights")
        try:
            state.update(load_file(str(path)))
        except (SafetensorError, OSError) as err:
            raise CheckpointError(f"{path}: cannot read safetensors weights ({err})") from err
    return state


def load_state(model: nn.Module, state: dict[str, torch.Tensor], folder: Path) -> None:
    """Load a full state dict strictly, naming missing, unexpected and wrongly shaped weights."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [k for k in expected.keys() & state.keys() if expected[k].shape != state[k].shape]
    if missing or unexpected or wrong:
        details = {"missing": missing[:5], "unexpected": unexpected[:5], "wrong shape": wrong[:5]}
        raise CheckpointError(f"{folder}: weights do not match the config ({details})")
    model.load_state_dict(state)
