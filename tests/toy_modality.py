"""A fourth modality defined here alone, with no edit in src/: single-channel depth maps stored as .npy
files (a 2-D float array each). Importing this module registers it; subprocesses (torchrun workers, the
search service) pick it up through OMNIBIND_MODALITIES=toy_modality with tests/ on PYTHONPATH (see
`plugin_env`). It is the worked example of docs/architecture.md."""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

import omnibind.modalities as registry
from omnibind.errors import InputError, UploadError
from omnibind.modalities import InputSpec, Modality, Preprocessor, TowerConfig
from omnibind.models.heads import make_pool, make_projection
from omnibind.models.patches import PatchEmbed
from omnibind.models.transformer import Encoder

NAME = "depth"
MAX_SIDE = 4096  # larger maps are refused before they are read
MAGIC = b"\x93NUMPY"


@dataclass
class DepthConfig(TowerConfig):
    """Depth maps resized to `size` × `size`, cut into `patch_size` patches."""

    size: int = 16
    patch_size: int = 4


class DepthTower(nn.Module):
    """(B, 1, size, size) normalised depth → (B, embed_dim), built from omnibind's own blocks."""

    def __init__(self, config: DepthConfig, embed_dim: int) -> None:
        super().__init__()
        side = config.size // config.patch_size
        self.patch_embed = PatchEmbed(1, config.width, config.patch_size, (side, side))
        self.encoder = Encoder(config.width, config.depth, config.heads, config.mlp_dim, config.eps)
        self.pool = make_pool(config.pool, config.width, config.heads, config.mlp_dim, config.eps)
        self.proj = make_projection(config.width, embed_dim, config.projection)

    def forward(self, depth: torch.Tensor) -> torch.Tensor:
        return self.head(self.tokens(depth))

    def tokens(self, depth: torch.Tensor) -> torch.Tensor:
        sequence: torch.Tensor = self.encoder(self.patch_embed(depth))
        return sequence

    def head(self, tokens: torch.Tensor) -> torch.Tensor:
        pooled: torch.Tensor = self.proj(self.pool(tokens))
        return pooled


def read_depth(source: Any) -> np.ndarray:
    """A 2-D float32 array from .npy bytes, a path or an array; pickled objects are refused."""
    if isinstance(source, np.ndarray):
        array = source
    else:
        data = Path(source).read_bytes() if isinstance(source, str | os.PathLike) else bytes(source)
        try:
            array = np.load(io.BytesIO(data), allow_pickle=False)
        except (ValueError, OSError, EOFError) as err:
            raise InputError("depth", f"cannot decode .npy ({err})", "a 2-D float array saved by numpy.save") from err
    if array.ndim != 2 or not np.issubdtype(array.dtype, np.number) or array.size == 0:
        raise InputError("depth", f"array of shape {array.shape} and dtype {array.dtype}", "a 2-D numeric array")
    depth: np.ndarray = array.astype(np.float32)
    return depth


class DepthPreprocessor:
    """Resize to size × size (bilinear) and standardise each map (zero mean, unit variance)."""

    def __init__(self, size: int) -> None:
        self.size = size

    @property
    def input_spec(self) -> InputSpec:
        return InputSpec((1, self.size, self.size), torch.float32)

    def one(self, source: Any) -> torch.Tensor:
        depth = torch.from_numpy(read_depth(source))[None, None]
        depth = F.interpolate(depth, size=(self.size, self.size), mode="bilinear", align_corners=False)[0]
        return (depth - depth.mean()) / depth.std().clamp(min=1e-6)

    def batch(self, sources: Sequence[Any]) -> torch.Tensor:
        if not sources:
            raise InputError("depth", "no depth maps given", "at least one")
        return torch.stack([self.one(s) for s in sources])


def _header_shape(data: bytes) -> tuple[int, ...]:
    """The array shape from an .npy header, without reading the data."""
    handle = io.BytesIO(data)
    major, _ = np.lib.format.read_magic(handle)
    read_header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
    shape, _, _ = read_header(handle)
    return tuple(shape)


class Depth(Modality):
    """Single-channel depth maps (.npy)."""

    name = NAME
    config_class = DepthConfig
    extensions = ("npy",)
    templates = ("a depth map of {}.",)
    input_name = "depth"
    expected = "a 2-D float array saved by numpy.save (.npy)"

    def build_tower(self, config: TowerConfig, embed_dim: int) -> nn.Module:
        assert isinstance(config, DepthConfig)
        return DepthTower(config, embed_dim)

    def input_spec(self, config: TowerConfig) -> InputSpec:
        assert isinstance(config, DepthConfig)
        return InputSpec((1, config.size, config.size), torch.float32)

    def build_preprocessor(self, config: TowerConfig, assets: dict[str, Path]) -> Preprocessor:
        assert isinstance(config, DepthConfig)
        return DepthPreprocessor(config.size)

    def summary(self, config: TowerConfig, preprocessor: Preprocessor | None) -> str:
        assert isinstance(config, DepthConfig)
        return f"{config.size}×{config.size} depth, patch {config.patch_size}"

    def sniff(self, data: bytes) -> bool:
        return data.startswith(MAGIC)

    def check_header(self, data: bytes, field: str) -> None:
        try:
            shape = _header_shape(data)
        except (ValueError, OSError, EOFError) as err:
            raise UploadError(422, field, f"cannot decode depth map ({err})", self.expected) from err
        if len(shape) != 2 or max(shape) > MAX_SIDE:
            raise UploadError(413 if len(shape) == 2 else 422, field, f"depth map of shape {shape}",
                              f"a 2-D array of at most {MAX_SIDE} per side")

    def describe(self, data: bytes, name: str) -> dict[str, Any]:
        try:
            shape = _header_shape(data)
        except (ValueError, OSError, EOFError) as err:
            raise InputError(name, f"cannot read .npy header ({err})", self.expected) from err
        if len(shape) != 2:
            raise InputError(name, f"array of shape {shape}", "a 2-D array")
        return {"height": int(shape[0]), "width": int(shape[1])}

    def preview(self, path: Path) -> tuple[bytes, str]:
        return _png(read_depth(Path(path).read_bytes())), "image/png"

    def save_example(self, source: Any, config: TowerConfig, folder: Path, stem: str) -> str:
        target = folder / f"{stem}.png"
        target.write_bytes(_png(read_depth(source)))
        return target.name


def _png(depth: np.ndarray) -> bytes:
    """A grey-scale rendering, near = bright."""
    low, high = float(depth.min()), float(depth.max())
    scaled = (255 * (high - depth) / max(high - low, 1e-6)).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(scaled, mode="L").save(out, format="PNG")
    return out.getvalue()


def depth_map(label: int, seed: int, size: int = 24) -> np.ndarray:
    """A synthetic depth map of class `label`: a tilted plane whose slope depends on the class, plus noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    angle = label * np.pi / 4
    plane: np.ndarray = np.cos(angle) * x + np.sin(angle) * y + 0.05 * rng.standard_normal((size, size))
    return plane.astype(np.float32)


def npy_bytes(array: np.ndarray) -> bytes:
    """An array as .npy file bytes."""
    out = io.BytesIO()
    np.save(out, array, allow_pickle=False)
    return out.getvalue()


def plugin_env() -> dict[str, str]:
    """Environment for a subprocess that must know the depth modality (torchrun workers, services)."""
    tests = str(Path(__file__).parent)
    path = os.pathsep.join(filter(None, [tests, os.environ.get("PYTHONPATH", "")]))
    return {**os.environ, "PYTHONPATH": path, registry.registry.ENV_VAR: "toy_modality"}


DEPTH = registry.register(Depth())
