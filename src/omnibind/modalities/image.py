"""The image modality: ViT tower, SigLIP preprocessing, image files, and JPEG previews."""

from __future__ import annotations

import importlib
import io
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import torch
from torch import nn

from omnibind.errors import InputError, UploadError
from omnibind.modalities.base import InputSpec, Modality, Preprocessor, TowerConfig

THUMBNAIL_SIZE = 256
REPORT_THUMBNAIL = 160


RESAMPLE_FILTERS = ("bicubic", "bilinear", "nearest", "lanczos", "box", "hamming")

IMAGE_TOWER_KINDS = {
    "vit": "omnibind.models.vit",  # omnibind's ViT (SigLIP's), or the NaFlex tower when max_num_patches > 0
    "connected": "omnibind.compose.connected",  # a foreign image tower + a connector (`omnibind compose`)
}
"""Image tower kinds → the module that builds them. "vit" is built here (fixed resolution or NaFlex); another
kind's module has `Model(config, embed_dim)`, `input_spec(config)`, `build_preprocessor(config, assets)`,
`summary(config)` and `inner_config(config)` (the tower config whose inputs it takes)."""


@dataclass
class ImageConfig(TowerConfig):
    """ViT image tower: square images of `image_size` cut into `patch_size` patches, resized with `resample`.
    With `max_num_patches` > 0 it is a NaFlex tower (SigLIP 2): each image keeps its aspect ratio and is resized
    to at most that many patches; `image_size / patch_size` is then the side of the learned position grid."""

    image_size: int = 224
    patch_size: int = 16
    channels: int = 3
    mean: tuple[float, ...] = (0.5, 0.5, 0.5)
    std: tuple[float, ...] = (0.5, 0.5, 0.5)
    resample: str = "bicubic"
    max_num_patches: int = 0
    kind: str = "vit"
    options: dict[str, Any] = field(default_factory=dict)
    # Left out of the saved config while at their defaults, so configs written before they existed stay the same.
    LAYOUT_OPTIONAL: ClassVar[tuple[str, ...]] = ("resample", "max_num_patches", "kind", "options")

    def __post_init__(self) -> None:
        if self.kind not in IMAGE_TOWER_KINDS:
            raise InputError("towers.image.kind", f"is {self.kind!r}", f"one of {sorted(IMAGE_TOWER_KINDS)}")
        if self.resample not in RESAMPLE_FILTERS:
            raise InputError("towers.image.resample", f"is {self.resample!r}", f"one of {list(RESAMPLE_FILTERS)}")
        if self.max_num_patches < 0:
            raise InputError("towers.image.max_num_patches", f"is {self.max_num_patches}",
                             "0 (fixed resolution) or a positive number of patches (NaFlex)")

    @property
    def naflex(self) -> bool:
        """Whether this is a NaFlex tower (variable resolution and aspect ratio)."""
        return self.max_num_patches > 0


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
        from omnibind.models import naflex, vit

        assert isinstance(config, ImageConfig)
        own = _kind_module(config)
        if own is not None:
            tower: nn.Module = own.Model(config, embed_dim)
            return tower
        return naflex.Model(config, embed_dim) if config.naflex else vit.Model(config, embed_dim)

    def input_spec(self, config: TowerConfig) -> InputSpec:
        assert isinstance(config, ImageConfig)
        own = _kind_module(config)
        if own is not None:
            spec: InputSpec = own.input_spec(config)
            return spec
        if config.naflex:  # packed patches + unary grid shape (models/naflex.py)
            side = config.patch_size
            return InputSpec((config.max_num_patches, config.channels * side * side + 2), torch.float32)
        return InputSpec((config.channels, config.image_size, config.image_size), torch.float32)

    def random_input(self, config: TowerConfig, batch: int, generator: torch.Generator) -> torch.Tensor:
        assert isinstance(config, ImageConfig)
        config = _inputs_of(config)
        if config.naflex:
            from omnibind.preprocess.naflex import random_packed

            return random_packed(config, batch, generator, lambda shape: torch.rand(shape, generator=generator) * 2 - 1)
        return super().random_input(config, batch, generator)

    def prototypes(self, config: TowerConfig, classes: int, generator: torch.Generator) -> torch.Tensor:
        assert isinstance(config, ImageConfig)
        config = _inputs_of(config)
        if config.naflex:
            from omnibind.preprocess.naflex import random_packed

            return random_packed(config, classes, generator, lambda shape: torch.randn(shape, generator=generator))
        return super().prototypes(config, classes, generator)

    def noisy_copy(self, prototype: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Gaussian noise on the pixels; a NaFlex batch (3-D: packed patches) keeps its grid-shape columns."""
        if prototype.dim() == 3:
            noise = torch.randn(prototype.shape, generator=generator)
            noise[..., -2:] = 0
            return prototype + noise
        return super().noisy_copy(prototype, generator)

    def summary(self, config: TowerConfig, preprocessor: Preprocessor | None) -> str:
        assert isinstance(config, ImageConfig)
        own = _kind_module(config)
        if own is not None:
            return str(own.summary(config))
        if config.naflex:
            return f"NaFlex: at most {config.max_num_patches} patches of {config.patch_size}px, aspect kept"
        return f"{config.image_size}px, patch {config.patch_size}"

    def build_preprocessor(self, config: TowerConfig, assets: dict[str, Path]) -> Preprocessor:
        from omnibind.preprocess.image import ImagePreprocessor
        from omnibind.preprocess.naflex import NaFlexPreprocessor, ResampledImagePreprocessor

        assert isinstance(config, ImageConfig)
        own = _kind_module(config)
        if own is not None:
            processor: Preprocessor = own.build_preprocessor(config, assets)
            return processor
        if config.naflex:
            return NaFlexPreprocessor(config.patch_size, config.max_num_patches, config.mean, config.std,
                                      config.resample)
        if config.resample != "bicubic":
            return ResampledImagePreprocessor(config.image_size, config.mean, config.std, config.resample)
        return ImagePreprocessor(config.image_size, config.mean, config.std)

    def sniff(self, data: bytes) -> bool:
        import warnings

        from PIL import Image as PILImage

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
                with PILImage.open(io.BytesIO(data)):
                    return True
        except PILImage.DecompressionBombError:
            return True  # a picture, refused by check_header
        except Exception:  # a decoder boundary: any failure means "not a picture"
            return False

    def check_header(self, data: bytes, field: str) -> None:
        from omnibind.preprocess.image import ImageTooLargeError

        try:
            _header_size(data, field)
        except ImageTooLargeError as err:
            raise UploadError(413, field, err.problem, err.expected) from err
        except InputError as err:
            raise UploadError(422, field, err.problem, self.expected) from err

    def describe(self, data: bytes, name: str) -> dict[str, Any]:
        """Width and height from the image header (no full decode)."""
        width, height = _header_size(data, name)
        return {"width": width, "height": height}

    def describe_file(self, path: Path, name: str) -> dict[str, Any]:
        """Width and height from the file's header, without reading the rest of it."""
        width, height = _header_size(path, name)
        return {"width": width, "height": height}

    def preview(self, path: Path) -> tuple[bytes, str]:
        """JPEG of the picture scaled to fit a 256 × 256 box (aspect kept; transparency over white)."""
        from PIL import Image as PILImage

        from omnibind.preprocess.image import load_image, to_rgb

        image = to_rgb(load_image(Path(path), (THUMBNAIL_SIZE, THUMBNAIL_SIZE)))
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


def _kind_module(config: ImageConfig) -> ModuleType | None:
    """The module that builds this kind of image tower (imported on first use); None for omnibind's own."""
    return None if config.kind == "vit" else importlib.import_module(IMAGE_TOWER_KINDS[config.kind])


def _inputs_of(config: ImageConfig) -> ImageConfig:
    """The config whose inputs a tower of this kind takes (a connected tower's: the foreign one's)."""
    own = _kind_module(config)
    if own is None:
        return config
    inner = own.inner_config(config)
    assert isinstance(inner, ImageConfig)
    return _inputs_of(inner)


def _header_size(source: bytes | Path, name: str) -> tuple[int, int]:
    """(width, height) from the header, refused over the size limits; errors are InputErrors naming `name`."""
    from omnibind.preprocess.image import open_image

    with open_image(source, name) as image:
        width, height = image.size
    return int(width), int(height)


IMAGE = Image()
