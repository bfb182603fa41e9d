"""SigLIP 2 image preprocessing, equal to transformers' processors (PIL backend) within float32 rounding.

- NaFlex (`Siglip2ImageProcessor`): each picture keeps its aspect ratio and is resized so that its patch grid
  holds at most `max_num_patches` patches (both sides multiples of the patch size, at least one patch), with the
  bilinear filter; then rescaled by 1/255, normalised, cut into row-major patches flattened as (p, p, C) and
  padded to `max_num_patches` rows. The result is packed with its grid shape into one tensor (models/naflex.py).
- Fixed resolution (SigLIP 2's `SiglipImageProcessor` resizes bilinearly where SigLIP's resizes bicubically):
  SigLIP's preprocessing with another resampling filter.

Decoding is bounded and very large pictures are decoded reduced exactly as in preprocess/image.py.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from PIL import Image

from omnibind.errors import InputError
from omnibind.media import source_name
from omnibind.modalities.base import InputSpec
from omnibind.modalities.image import ImageConfig
from omnibind.models.naflex import SHAPE_COLUMNS, pack
from omnibind.preprocess.image import (
    EXPECTED,
    ImageInput,
    ImagePreprocessor,
    decoder_reason,
    load_image,
    open_image,
    reduce_for,
    to_rgb,
)

FILTERS = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "box": Image.Resampling.BOX,
    "hamming": Image.Resampling.HAMMING,
}
"""ImageConfig.resample names → Pillow filters (transformers' `resample` ints are these filters' values)."""


def target_size(height: int, width: int, patch: int, max_patches: int, eps: float = 1e-5) -> tuple[int, int]:
    """(height, width) in pixels that transformers' Siglip2ImageProcessor resizes a picture to: the largest scale
    (found by the same bisection) whose patch-rounded-up size has at most `max_patches` patches."""

    def side(scale: float, size: int) -> int:
        return int(max(patch, math.ceil(size * scale / patch) * patch))

    low, high = eps / 10, 100.0
    while high - low >= eps:
        scale = (low + high) / 2
        if (side(scale, height) / patch) * (side(scale, width) / patch) <= max_patches:
            low = scale
        else:
            high = scale
    return side(low, height), side(low, width)


def _resized_rgb(source: ImageInput, size: Callable[[int, int], tuple[int, int]], resample: str) -> Image.Image:
    """The picture decoded (bounded), in RGB, resized to `size(width, height)` → (width, height) of its original
    size with the named filter; decoder failures name the source."""
    name = "<image>" if isinstance(source, Image.Image) else source_name(source)
    if isinstance(source, Image.Image):
        original = source.size
    else:
        with open_image(source, name) as header:
            original = header.size
    target = size(*original)
    image = load_image(source, target, name)
    try:
        image = reduce_for(to_rgb(image), target)  # to RGB first: palette images cannot reduce
        return image.resize(target, resample=FILTERS[resample])
    except Exception as err:  # an unusual mode Pillow cannot convert: name the file, not a traceback
        raise InputError(name, f"cannot decode image ({decoder_reason(err)})", EXPECTED) from err


def _normalised(image: Image.Image, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """(C, H, W) float32: rescaled by 1/255 and normalised, as transformers does it."""
    array = np.asarray(image, dtype=np.float32).transpose(2, 0, 1) * np.float32(1 / 255)
    return (array - mean) / std


class ResampledImagePreprocessor(ImagePreprocessor):
    """SigLIP's fixed-resolution preprocessing with another resampling filter (SigLIP 2: bilinear)."""

    def __init__(self, size: int | tuple[int, int] = 224, mean: Sequence[float] = (0.5, 0.5, 0.5),
                 std: Sequence[float] = (0.5, 0.5, 0.5), resample: str = "bilinear") -> None:
        super().__init__(size, mean, std)
        if resample not in FILTERS:
            raise InputError("resample", f"is {resample!r}", f"one of {sorted(FILTERS)}")
        self.resample = resample

    def __call__(self, source: ImageInput) -> torch.Tensor:
        height, width = self.size
        image = _resized_rgb(source, lambda w, h: (int(width), int(height)), self.resample)
        return torch.from_numpy(_normalised(image, self.mean, self.std))


class NaFlexPreprocessor:
    """Callable that turns one image into its packed NaFlex input (max_num_patches, C·p·p + 2); `batch` stacks
    many (they share one shape, as transformers pads every image to `max_num_patches`)."""

    def __init__(self, patch_size: int = 16, max_num_patches: int = 256, mean: Sequence[float] = (0.5, 0.5, 0.5),
                 std: Sequence[float] = (0.5, 0.5, 0.5), resample: str = "bilinear") -> None:
        if patch_size < 1 or max_num_patches < 1:
            raise InputError("naflex", f"patch_size {patch_size}, max_num_patches {max_num_patches}",
                             "positive patch_size and max_num_patches")
        if resample not in FILTERS:
            raise InputError("resample", f"is {resample!r}", f"one of {sorted(FILTERS)}")
        self.patch_size = patch_size
        self.max_num_patches = max_num_patches
        self.mean = np.asarray(mean, dtype=np.float32).reshape(-1, 1, 1)
        self.std = np.asarray(std, dtype=np.float32).reshape(-1, 1, 1)
        self.resample = resample

    def patches(self, source: ImageInput) -> tuple[torch.Tensor, tuple[int, int]]:
        """The image's (rows·columns, p·p·C) patches in row-major order and its (rows, columns) patch grid."""
        p, limit = self.patch_size, self.max_num_patches
        image = _resized_rgb(source, lambda w, h: target_size(h, w, p, limit)[::-1], self.resample)
        array = _normalised(image, self.mean, self.std)
        channels, height, width = array.shape
        rows, columns = height // p, width // p
        grid = array.reshape(channels, rows, p, columns, p).transpose(1, 3, 2, 4, 0)
        return torch.from_numpy(np.ascontiguousarray(grid.reshape(rows * columns, -1))), (rows, columns)

    def __call__(self, source: ImageInput) -> torch.Tensor:
        patches, (rows, columns) = self.patches(source)
        return pack(patches, rows, columns, self.max_num_patches)

    @property
    def input_spec(self) -> InputSpec:
        """What `one` returns: (max_num_patches, 3·p·p + 2) float32."""
        return InputSpec((self.max_num_patches, 3 * self.patch_size**2 + SHAPE_COLUMNS), torch.float32)

    def one(self, source: ImageInput) -> torch.Tensor:
        """The packed input of one image (the Preprocessor protocol)."""
        return self(source)

    def batch(self, sources: Sequence[ImageInput]) -> torch.Tensor:
        """Preprocess and stack images into (B, max_num_patches, 3·p·p + 2)."""
        if not sources:
            raise InputError("images", "no images given", "at least one image")
        return torch.stack([self(s) for s in sources])


def random_packed(config: ImageConfig, batch: int, generator: torch.Generator,
                  values: Callable[[tuple[int, ...]], torch.Tensor]) -> torch.Tensor:
    """A batch of packed NaFlex inputs with random grid shapes (at most max_num_patches patches) and pixel values
    from `values(shape)`: synthetic batches and export checks that look like real ones."""
    limit, dim = config.max_num_patches, config.channels * config.patch_size**2
    out = []
    for _ in range(batch):
        rows = int(torch.randint(1, limit + 1, (1,), generator=generator))
        columns = int(torch.randint(1, limit // rows + 1, (1,), generator=generator))
        out.append(pack(values((rows * columns, dim)), rows, columns, limit))
    return torch.stack(out)
