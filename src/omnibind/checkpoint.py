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
from omnibind.errors import CheckpointError, InputError
from omnibind.fsutil import fsync_path
from omnibind.models.model import OmniBind
from omnibind.processors import build_processors

FORMAT = "omnibind"
FORMAT_VERSION = 2  # 2: embed_dim only in the model config, audio front end nested (1 still loads)
CONFIG_FILE, WEIGHTS_FILE, TOKENIZER_FILE = "config.json", "model.safetensors", "spiece.model"
GENERATOR_SECTION = "decoder"  # its presence in config.json makes the checkpoint a generator (towers + decoder)
HUB_FILES = [CONFIG_FILE, "*.safetensors", "model.safetensors.index.json", TOKENIZER_FILE, "*.json"]
AUTO, EMBEDDING, GENERATOR = "auto", "embedding", "generator"
KINDS = (AUTO, EMBEDDING, GENERATOR)
"""What `load(..., kind=...)` returns: by the checkpoint ("auto"), an OmniBind ("embedding"), a Generator."""
GENERATOR_ONLY = ("decoder.", "project.")  # a generator's weights that an embedding model reads nothing from
EMBEDDING_WEIGHTS = ("logit_scale", "logit_bias")  # the sigmoid loss's t' and b, which a generator never saves


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
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    # every preprocessor file a checkpoint may carry, e.g. a composed model's anchor0.spiece.model
    patterns = [*HUB_FILES, *sorted({n for m in registry.all_modalities() for n in m.asset_names})]
    try:
        return Path(snapshot_download(name, allow_patterns=patterns))
    except LocalEntryNotFoundError as err:
        cache = f"huggingface_hub's cache ({constants.HF_HUB_CACHE})"
        if constants.HF_HUB_OFFLINE:
            raise CheckpointError(f"{name}: not in {cache}, and HF_HUB_OFFLINE is set, so it cannot be downloaded "
                                  f"(download it once online, or pass a checkpoint folder) ({err})") from err
        raise CheckpointError(f"{name}: not in {cache}, and the hub cannot be reached ({err})") from err
    except (HfHubHTTPError, OSError, ValueError) as err:
        raise CheckpointError(f"{name}: cannot fetch from the hub or its cache ({err})") from err


def load(name_or_path: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype | None = None,
         kind: str = AUTO) -> Any:
    """Load an omnibind checkpoint or a foreign one that a converter in omnibind.convert reads (transformers
    SigLIP, ...), from a folder or hub id, with its preprocessors.

    `kind` says what to load: "auto" (the default) a `Generator` when config.json has a "decoder" section and an
    `OmniBind` otherwise; "embedding" always an `OmniBind` (from a captioning run trained beside a contrastive
    loss: its towers, t' and b, the decoder and projections left out); "generator" always a `Generator`. A
    checkpoint that holds no such model is refused with a CheckpointError naming the folder."""
    if kind not in KINDS:
        raise InputError("kind", f"got {kind!r}", " or ".join(repr(k) for k in KINDS))
    folder = resolve(name_or_path)
    meta = read_json(folder / CONFIG_FILE, required=True)
    native = meta.get("format") == FORMAT
    model: nn.Module
    if native and GENERATOR_SECTION in meta and kind != EMBEDDING:
        from omnibind.generation.store import load_generator

        model = load_generator(folder, meta)
    elif native and GENERATOR_SECTION in meta:
        model = load_embedding_part(folder, meta)
    elif native:
        if kind == GENERATOR:
            raise CheckpointError(f"{folder}: an embedding model's checkpoint, with no '{GENERATOR_SECTION}' section "
                                  "(expected a generator checkpoint: a captioning run's, omnibind.save of a Generator "
                                  "or a PaliGemma folder)")
        config = ModelConfig.from_dict(meta["model"])
        model = OmniBind(config, build_processors(config, assets=present_assets(folder)))
        load_state(model, read_weights(folder), folder)
    else:
        model = converters.find(meta, folder / CONFIG_FILE).build(folder, meta)
        is_embedding = isinstance(model, OmniBind)
        if kind == EMBEDDING and not is_embedding:
            raise CheckpointError(f"{folder}: holds a {type(model).__name__}, not an embedding model (expected a "
                                  "checkpoint with towers to compare, such as SigLIP's)")
        if kind == GENERATOR and is_embedding:
            raise CheckpointError(f"{folder}: an embedding model's checkpoint, with no decoder (expected a generator "
                                  "checkpoint: a captioning run's, omnibind.save of a Generator or a PaliGemma folder)")
    return model.to(device=device, dtype=dtype).eval()


def holds_generator(name_or_path: str | Path) -> bool:
    """Whether `load(..., kind="generator")` finds a decoder in this omnibind checkpoint (config.json alone is read;
    foreign folders, such as PaliGemma's, are not looked into)."""
    meta = read_json(resolve(name_or_path) / CONFIG_FILE, required=True)
    return meta.get("format") == FORMAT and GENERATOR_SECTION in meta


def load_embedding_part(folder: Path, meta: dict[str, Any]) -> OmniBind:
    """The embedding model inside a generator checkpoint (a captioning run trained beside a contrastive loss): its
    towers, t' and b load strictly; the decoder and the projections are left out. A checkpoint without what an
    embedding model needs (t' and b, two towers or more) is refused, naming what it lacks."""
    config = ModelConfig.from_dict(meta["model"])
    state = {k: v for k, v in read_weights(folder).items() if not k.startswith(GENERATOR_ONLY)}
    lacks = [f"'{k}'" for k in EMBEDDING_WEIGHTS if k not in state]
    absent = [m for m in config.towers if not any(k.startswith(f"towers.{m}.") for k in state)]
    lacks += [f"the weights of its {m} tower" for m in absent]
    if len(config.towers) - len(absent) < 2:
        lacks.append(f"a second tower (it has {len(config.towers) - len(absent)})")
    if lacks:
        raise CheckpointError(f"{folder}: a generator checkpoint that holds no embedding model: it lacks "
                              f"{', '.join(lacks)} (expected a captioning run trained beside a contrastive loss, "
                              "with towers, logit_scale and logit_bias; load it with kind='generator')")
    model = OmniBind(config, build_processors(config, assets=present_assets(folder)))
    load_state(model, state, folder)
    return model


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
