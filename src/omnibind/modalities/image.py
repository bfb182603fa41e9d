"""The image modality: ViT tower, SigLIP preprocessing, image files, and JPEG previews."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from omnibind.errors import InputError, UploadError
from omnibind.modalities.base import InputSpec, Modality, Preprocessor, TowerConfig

MAX_PIXELS = 40_000_000  # an upload decodes to RGB of at most ~120 MB
THUMBNAIL_SIZE = 256
REPORT_THUMBNAIL = 160


@dataclass
class ImageConfig(TowerConfig):
    """ViT image tower: square images of `image_size` cut into `patch_size` patches."""

    image_size: int = 224
    patch_size: int = 16
    channels: int = 3
    mean: tuple[float, ...] = (0.5, 0.5, 0.5)
    std: tuple[float, ...] = (0.5, 0.5, 0.5)


class Image(Modality):
    """Pictures: PNG, JPEG, WebP, GIF, BMP, TIFF."""

    name = "image"
    config_class = ImageConfig
    extensions = ("jpg", "jpeg", "png", "webp", "gif", "bmp", "tiff", "tif")
    canonical_extensions: ClassVar[dict[str, str]] = {"jpeg": "jpg", "tif": "tiff"}
    templates = ("a photo of {}.",)
    input_name = "pixels"
    expected = "an image file Pillow can decode (PNG, JPEG, WebP, GIF, BMP, TIFF)"
    noun = "a picture"

    def build_tower(self, config: TowerConfig, embed_dim: int) -> nn.Module:
        from omnibind.models import vit

        assert isinstance(config, ImageConfig)
        return vit.Model(config, embed_dim)

    def input_spec(self, config: TowerConfig) -> InputSpec:
        assert isinstance(config, ImageConfig)
        return InputSpec((config.channels, config.image_size, config.image_size), torch.float32)

    def summary(self, config: TowerConfig, preprocessor: Preprocessor | None) -> str:
        assert isinstance(config, ImageConfig)
        return f"{config.image_size}px, patch {config.patch_size}"

    def build_preprocessor(self, config: TowerConfig, assets: dict[str, Path]) -> Preprocessor:
        from omnibind.preprocess.image import ImagePreprocessor

        assert isinstance(config, ImageConfig)
        return ImagePreprocessor(config.image_size, config.mean, config.std)

    def sniff(self, data: bytes) -> bool:
        from PIL import Image as PILImage
        from PIL import UnidentifiedImageError

        try:
            with PILImage.open(io.BytesIO(data)):
                return True
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
            return False

    def check_header(self, data: bytes, field: str) -> None:
        try:
            width, height = _header_size(data)
        except (OSError, SyntaxError, ValueError) as err:
            raise UploadError(422, field, f"cannot decode image ({_reason(err)})", self.expected) from err
        if width * height > MAX_PIXELS:
            raise UploadError(413, field, f"image of {width}×{height} pixels is too large",
                              f"at most {MAX_PIXELS // 1_000_000} megapixels")

    def describe(self, data: bytes, name: str) -> dict[str, Any]:
        """Width and height from the image header (no full decode)."""
        try:
            width, height = _header_size(data)
        except (OSError, SyntaxError, ValueError) as err:
            raise InputError(name, _reason(err, "cannot read image header"), "an image file Pillow can decode") \
                from err
        return {"width": width, "height": height}

    def preview(self, path: Path) -> tuple[bytes, str]:
        """JPEG of the picture scaled to fit a 256 × 256 box (aspect kept; transparency over white)."""
        from PIL import Image as PILImage

        from omnibind.preprocess.image import load_image, to_rgb

        image = to_rgb(load_image(Path(path)))
        image.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE), PILImage.Resampling.LANCZOS)
        out = io.BytesIO()
        image.save(out, format="JPEG", quality=85)
        return out.getvalue(), "image/jpeg"

    def save_example(self, source: Any, config: TowerConfig, folder: Path, stem: str) -> str:
        from omnibind.preprocess.image import load_image, to_rgb

        target = folder / f"{stem}.png"
        image = to_rgb(load_image(source))
        image.thumbnail((REPORT_THUMBNAIL, REPORT_THUMBNAIL))
        image.save(target)
        return target.name


def _header_size(data: bytes) -> tuple[int, int]:
    """(width, height) from the header; Pillow's errors pass through (UnidentifiedImageError is an OSError)."""
    from PIL import Image as PILImage

    with PILImage.open(io.BytesIO(data)) as image:
        width, height = image.size
    return int(width), int(height)


def _reason(err: Exception, prefix: str | None = None) -> str:
    """Pillow's message without the in-memory file object's repr."""
    from PIL import UnidentifiedImageError

    if isinstance(err, UnidentifiedImageError):
        return "not a recognised image format"
    return f"{prefix} ({err})" if prefix else str(err)


IMAGE = Image()
