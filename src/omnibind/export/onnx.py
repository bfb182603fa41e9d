"""ONNX export: one graph per tower (preprocessed tensor → unit embedding) with a dynamic batch axis, written
with torch's torch.export-based exporter and checked against PyTorch with onnxruntime before it is kept."""

from __future__ import annotations

import copy
import json
import logging
import shutil
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import omnibind.modalities as registry
from omnibind import checkpoint
from omnibind.config import TowerConfig
from omnibind.errors import OmniBindError
from omnibind.models.model import OmniBind

OPSET = 18
TOLERANCE = 1e-4  # max abs difference of unit embeddings, float32
MANIFEST = "manifest.json"
# Not "embedding": the exporter already names the text tower's nn.Embedding node that, and ONNX names must be unique.
OUTPUT_NAME = "unit_embedding"
MAX_BATCH = 65536


class ExportError(OmniBindError):
    """An export failed, or its ONNX graph disagrees with PyTorch beyond the tolerance."""


class UnitEmbedding(nn.Module):
    """A tower followed by L2 normalisation: what `OmniBind.encode` returns for ready tensors."""

    def __init__(self, tower: nn.Module) -> None:
        super().__init__()
        self.tower = tower

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.tower(x), dim=-1)


@dataclass(frozen=True)
class ExportedTower:
    """One written graph: its file, input name/shape/dtype and the measured parity with PyTorch."""

    modality: str
    file: str
    input_name: str
    input_shape: list[str | int]
    input_dtype: str
    output_name: str
    embed_dim: int
    max_abs_diff: float


def example_input(config: TowerConfig, batch: int, seed: int = 0) -> torch.Tensor:
    """A random batch shaped like the tower's preprocessed input, as its modality makes one."""
    generator = torch.Generator().manual_seed(seed)
    return registry.for_config(config).random_input(config, batch, generator)


@contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence the exporter's notes about optional packages (torchvision) and deprecation chatter."""
    logger = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    finally:
        logger.setLevel(level)


def export_tower(module: nn.Module, example: torch.Tensor, path: Path, input_name: str, opset: int = OPSET) -> None:
    """Write one module (single tensor in, single tensor out) as ONNX with a dynamic batch axis."""
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    with _quiet_exporter():
        try:
            program = torch.onnx.export(module, (example,), dynamo=True, verbose=False, opset_version=opset,
                                        input_names=[input_name], output_names=[OUTPUT_NAME],
                                        dynamic_shapes=({0: batch},))
        except Exception as err:  # the exporter raises many types; name the tower in one error
            raise ExportError(f"{path.name}: torch.onnx.export failed ({type(err).__name__}: {err})") from err
    if program is None:
        raise ExportError(f"{path.name}: torch.onnx.export returned no program")
    program.save(str(path))


def max_abs_diff(path: Path, module: nn.Module, inputs: torch.Tensor) -> float:
    """Largest absolute difference between onnxruntime and PyTorch outputs on `inputs`."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    got = session.run(None, {name: inputs.numpy()})[0]
    with torch.no_grad():
        want = module(inputs).numpy()
    return float(np.abs(got - want).max())


def export_onnx(model: OmniBind, out: str | Path, opset: int = OPSET, tolerance: float = TOLERANCE,
                model_name: str | None = None) -> list[ExportedTower]:
    """Write `<modality>.onnx` for every tower, a manifest.json (inputs, outputs, preprocessing config) and the
    tokenizer into `out`; every graph must match PyTorch within `tolerance` on a random batch of 3."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    exported = []
    for modality, config in model.config.towers.items():
        module = UnitEmbedding(copy.deepcopy(model.towers[modality])).float().cpu().eval()
        path = out / f"{modality}.onnx"
        input_name = registry.get(modality).input_name
        example = example_input(config, batch=2)
        export_tower(module, example, path, input_name, opset)
        diff = max_abs_diff(path, module, example_input(config, batch=3, seed=1))
        if not diff <= tolerance:
            path.unlink(missing_ok=True)
            raise ExportError(f"{path}: onnxruntime differs from PyTorch by {diff:.3g} (expected at most {tolerance})")
        exported.append(ExportedTower(modality, path.name, input_name, ["batch", *example.shape[1:]],
                                      str(example.dtype).removeprefix("torch."), OUTPUT_NAME, model.config.embed_dim,
                                      diff))
    assets = checkpoint.asset_files(model)
    for name, source in assets.items():
        shutil.copyfile(source, out / name)
    tokenizer = registry.text.TOKENIZER_FILE
    manifest = {"format": "omnibind-onnx", "opset": opset, "model": model_name, "embed_dim": model.config.embed_dim,
                "tolerance": tolerance, "towers": {t.modality: asdict(t) for t in exported},
                "config": model.config.to_dict(), "tokenizer": tokenizer if tokenizer in assets else None,
                "assets": sorted(assets)}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return exported
