"""Image preprocessing exactly as transformers' SigLIP processor: RGB (alpha over white), bicubic
resize to the model resolution, rescale by 1/255, normalise with mean = std = 0.5.

Decoding is bounded: the header is read first and an image over `MAX_SIDE` pixels on a side or `MAX_PIXELS`
in area is refused before any pixel is decoded (Pillow's own decompression-bomb check included). A picture of
more than `REDUCE_ABOVE_PIXELS` that is also at least `REDUCE_FACTOR` times the model's input on both sides is
decoded at a reduced scale (JPEG DCT scaling via `draft`, `reduce` for the others) to no less than twice the
target size before the bicubic resize; that trades exact parity with transformers (kept for every smaller
picture) for memory and time on very large ones."""

from __future__ import annotations

import io
import os
import re
import warnings
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from omnibind.errors import InputError
from omnibind.media import check_file, source_name
from omnibind.modalities.base import InputSpec

ImageInput = str | os.PathLike | bytes | Image.Image
EXPECTED = "an image file Pillow can decode (PNG, JPEG, WebP, GIF, BMP, TIFF)"
MAX_PIXELS = 40_000_000  # decodes to RGB of at most ~120 MB
MAX_SIDE = 16_384  # per side: a 1 × 40,000,000 strip is as costly to resize as it is cheap to send
REDUCE_FACTOR = 4  # decode at a reduced scale only when both sides exceed the target this many times
REDUCE_ABOVE_PIXELS = 16_000_000  # ... and the picture is this large: smaller ones are decoded as transformers does
_LIMITS = f"at most {MAX_SIDE} pixels on a side and {MAX_PIXELS // 1_000_000} megapixels"
_OBJECT_REPR = re.compile(r"\s*<[\w.]+ object at 0x[0-9a-f]+>")


class ImageTooLargeError(InputError):
    """An image whose header claims more pixels (per side or in area) than omnibind decodes."""


def size_limit_problem(width: int, height: int) -> str | None:
    """Why an image of this size is refused (per side, then area), or None when it is within the limits."""
    if width <= 0 or height <= 0:
        return f"image of {width}×{height} pixels has no area"
    if max(width, height) > MAX_SIDE:
        return f"image of {width}×{height} pixels is too large"
    if width * height > MAX_PIXELS:
        return f"image of {width}×{height} pixels is too large"
    return None


def decoder_reason(err: BaseException) -> str:
    """A decoder's message without in-memory file objects' reprs; Pillow's bomb and format errors reworded."""
    if isinstance(err, UnidentifiedImageError):
        return "not a recognised image format"
    if isinstance(err, Image.DecompressionBombError):
        pixels = re.search(r"\((\d+) pixels\)", str(err))
        return f"image of {pixels.group(1) if pixels else 'too many'} pixels is too large (a decompression bomb)"
    text = _OBJECT_REPR.sub("", str(err)).strip() or type(err).__name__
    return text


@contextmanager
def open_image(source: str | os.PathLike | bytes, name: str | None = None) -> Iterator[Image.Image]:
    """The image opened lazily (header read, no pixels), refused when over the size limits; its file is closed
    when the block ends. Every decoder failure becomes an InputError naming `name` (default: the path, or
    <bytes>)."""
    name = name or source_name(source)
    with ExitStack() as stack:
        file: IO[bytes]
        if isinstance(source, bytes | bytearray):
            if not source:
                raise InputError(name, "no data (0 bytes)", EXPECTED)
            file = io.BytesIO(bytes(source))
        else:
            check_file(Path(source), EXPECTED)
            try:
                file = stack.enter_context(open(source, "rb"))  # closed by the stack
            except OSError as err:
                raise InputError(name, f"cannot read ({err.strerror or err})", EXPECTED) from err
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limits apply below
                image = Image.open(file)
        except Image.DecompressionBombError as err:
            raise ImageTooLargeError(name, decoder_reason(err), _LIMITS) from err
        except Exception as err:  # a decoder boundary: Pillow raises many types on hostile headers
            raise InputError(name, f"cannot decode image ({decoder_reason(err)})", EXPECTED) from err
        problem = size_limit_problem(*image.size)
        if problem is not None:
            raise ImageTooLargeError(name, problem, _LIMITS)
        yield image


def load_image(source: ImageInput, target: tuple[int, int] | None = None, name: str | None = None) -> Image.Image:
    """Decode a path, bytes or PIL image into a fully loaded PIL image (the first frame of an animation), with
    errors naming the source; given a `target` (width, height), a very large JPEG is decoded reduced (draft)."""
    if isinstance(source, Image.Image):
        return source
    name = name or source_name(source)
    with open_image(source, name) as image:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                if target is not None and _reducible(image.size, target) and image.format == "JPEG":
                    image.draft("RGB", (2 * target[0], 2 * target[1]))
                image.load()
        except Exception as err:  # truncated data, bad chunks, decoder limits: one clear line naming the file
            raise InputError(name, f"cannot decode image ({decoder_reason(err)})", EXPECTED) from err
    return image


def reduce_for(image: Image.Image, target: tuple[int, int] | None) -> Image.Image:
    """An RGB picture box-reduced by an integer factor to no less than twice `target` when it is over
    `REDUCE_ABOVE_PIXELS` and at least `REDUCE_FACTOR` times larger on both sides (else unchanged)."""
    if target is None or not _reducible(image.size, target):
        return image
    factor = min(image.size[0] // (2 * target[0]), image.size[1] // (2 * target[1]))
    return image.reduce(factor) if factor > 1 else image


def _reducible(size: tuple[int, int], target: tuple[int, int]) -> bool:
    """Whether a picture is large enough to be decoded reduced (see the module docstring)."""
    return (size[0] * size[1] > REDUCE_ABOVE_PIXELS
            and size[0] >= REDUCE_FACTOR * target[0] and size[1] >= REDUCE_FACTOR * target[1])


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
        height, width = self.size
        image = load_image(source, (width, height))
        try:
            image = reduce_for(to_rgb(image), (width, height))  # to RGB first: palette images cannot reduce
            if image.size != (width, height):
                image = image.resize((width, height), resample=Image.Resampling.BICUBIC)
        except Exception as err:  # an unusual mode Pillow cannot convert: name the file, not a traceback
            name = "<image>" if isinstance(source, Image.Image) else source_name(source)
            raise InputError(name, f"cannot decode image ({decoder_reason(err)})", EXPECTED) from err
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
