"""Image preprocessing exactly as transformers' SigLIP processor: RGB (alpha over white), bicubic
resize to the model resolution, rescale by 1/255, normalise with mean = std = 0.5."""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from omnibind.errors import InputError
from omnibind.media import check_file, source_name
from omnibind.modalities.base import InputSpec

ImageInput = str | os.PathLike | bytes | Image.Image
EXPECTED = "an image file Pillow can decode (PNG, JPEG, WebP, GIF, BMP, TIFF)"


def load_image(source: ImageInput) -> Image.Image:
    """Decode a path, bytes or PIL image into a fully loaded PIL image, with errors naming the source."""
    if isinstance(source, Image.Image):
        return source
    name = source_name(source)
    data = _read_bytes(source, name)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombWarning) as err:
        raise InputError(name, f"cannot decode image ({err})", EXPECTED) from err
    return image


def _read_bytes(source: str | os.PathLike | bytes, name: str) -> bytes:
    if isinstance(source, bytes):
        if not source:
            raise InputError(name, "no data (0 bytes)", EXPECTED)
        return source
    path = Path(source)
    check_file(path, EXPECTED)
    return path.read_bytes()


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB conversion as transformers does it: transparent images are composited over white."""
    if "A" in image.getbands() or image.info.get("transparency") is not None:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


class ImagePreprocessor:
    """Callable that turns one image into a (3, size, size) float tensor; `batch` stacks many."""

    def __init__(
        self,
        size: int | tuple[int, int] = 224,
        mean: Sequence[float] = (0.5, 0.5, 0.5),
        std: Sequence[float] = (0.5, 0.5, 0.5),
    ) -> None:
        self.size = (size, size) if isinstance(size, int) else tuple(size)
        self.mean = np.asarray(mean, dtype=np.float32).reshape(-1, 1, 1)
        self.std = np.asarray(std, dtype=np.float32).reshape(-1, 1, 1)

    def __call__(self, source: ImageInput) -> torch.Tensor:
        image = to_rgb(load_image(source))
        height, width = self.size
        if image.size != (width, height):
            image = image.resize((width, height), resample=Image.Resampling.BICUBIC)
        array = np.asarray(image, dtype=np.float32).transpose(2, 0, 1) * np.float32(1 / 255)
        return torch.from_numpy((array - self.mean) / self.std)

    @property
    def input_spec(self) -> InputSpec:
        """What `one` returns: (3, H, W) float32."""
        height, width = self.size
        return InputSpec((3, int(height), int(width)), torch.float32)

    def one(self, source: ImageInput) -> torch.Tensor:
        """(3, H, W) pixels of one image (the Preprocessor protocol)."""
        return self(source)

    def batch(self, sources: Sequence[ImageInput]) -> torch.Tensor:
        """Preprocess and stack images into (B, 3, H, W)."""
        if not sources:
            raise InputError("images", "no images given", "at least one image")
        return torch.stack([self(s) for s in sources])
