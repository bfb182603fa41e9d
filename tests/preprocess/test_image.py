"""Image preprocessing: equal to transformers' SigLIP processor on real photos; clear errors on bad files."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from omnibind.errors import InputError
from omnibind.preprocess.image import ImagePreprocessor, load_image

skimage_data = Path(pytest.importorskip("skimage").__file__).parent / "data"
# Real photos and drawings in every mode the processor must handle: RGB, grey, RGBA, palette GIF, JPEG.
REAL_IMAGES = ["astronaut.png", "camera.png", "logo.png", "rocket.jpg", "coffee.png",
               "no_time_for_that_tiny.gif", "hubble_deep_field.jpg", "chessboard_GRAY.png"]
TOL = 1e-5  # max abs difference against transformers, float32


def hf_processor(size: int):
    transformers = pytest.importorskip("transformers")
    cls = getattr(transformers, "SiglipImageProcessorPil", None) or transformers.SiglipImageProcessor
    return cls(size={"height": size, "width": size})


@pytest.mark.parametrize("name", REAL_IMAGES)
@pytest.mark.parametrize("size", [224, 384])
def test_matches_transformers_processor(name: str, size: int) -> None:
    path = skimage_data / name
    ours = ImagePreprocessor(size)(path)
    theirs = hf_processor(size)(Image.open(path), return_tensors="np")["pixel_values"][0]
    assert ours.shape == (3, size, size)
    assert np.abs(ours.numpy() - theirs).max() < TOL


def test_bytes_path_and_pil_agree() -> None:
    path = skimage_data / "astronaut.png"
    pre = ImagePreprocessor(64)
    from_path, from_bytes, from_pil = pre(path), pre(path.read_bytes()), pre(Image.open(path))
    assert (from_path == from_bytes).all() and (from_path == from_pil).all()
    assert from_path.min() >= -1 and from_path.max() <= 1


def test_batch_stacks() -> None:
    paths = [skimage_data / n for n in REAL_IMAGES[:3]]
    assert ImagePreprocessor(32).batch(paths).shape == (3, 3, 32, 32)


def test_transparent_pixels_become_white() -> None:
    buf = io.BytesIO()
    Image.new("RGBA", (8, 8), (255, 0, 0, 0)).save(buf, format="PNG")
    assert (ImagePreprocessor(8)(buf.getvalue()) == 1.0).all()


def _write(name: str, data: bytes):
    def make(folder: Path) -> Path:
        (folder / name).write_bytes(data)
        return folder / name

    return make


def _truncated_png(folder: Path) -> Path:
    data = (skimage_data / "astronaut.png").read_bytes()
    return _write("cut.png", data[: len(data) // 3])(folder)


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda d: d / "missing.png", "file not found"),
        (_write("empty.png", b""), "empty"),
        (_write("noise.jpg", b"\x00garbage" * 50), "cannot decode"),
        (_write("notes.webp", b"hello"), "cannot decode"),
        (_truncated_png, "cannot decode"),
    ],
    ids=["missing", "empty", "corrupt", "unknown-format", "truncated"],
)
def test_bad_files_raise_clear_errors(tmp_path: Path, make, fragment: str) -> None:
    path = make(tmp_path)
    with pytest.raises(InputError) as err:
        ImagePreprocessor(32)(path)
    message = str(err.value)
    assert path.name in message and fragment in message and "expected" in message


def test_bad_bytes_are_named() -> None:
    with pytest.raises(InputError, match="<bytes>"):
        load_image(b"not an image")


def _palette_png(size: tuple[int, int]) -> bytes:
    image = Image.new("RGB", size, "white")
    ImageDraw.Draw(image).ellipse((10, 10, size[0] - 10, size[1] - 10), fill="red")
    out = io.BytesIO()
    image.convert("P", palette=Image.Palette.ADAPTIVE, colors=16).save(out, format="PNG")
    return out.getvalue()


def test_pictures_below_the_reduce_threshold_decode_exactly_as_transformers_does() -> None:
    """A 200-px palette picture for a 32-px model: full decode, RGB, one bicubic resize (no box reduce)."""
    data = _palette_png((200, 160))
    expected = Image.open(io.BytesIO(data)).convert("RGB").resize((32, 32), resample=Image.Resampling.BICUBIC)
    want = (np.asarray(expected, dtype=np.float32).transpose(2, 0, 1) / 255 - 0.5) / 0.5
    assert np.abs(ImagePreprocessor(32)(data).numpy() - want).max() < 1e-5


def test_very_large_palette_pictures_are_reduced_without_error(monkeypatch) -> None:
    import omnibind.preprocess.image as image_module

    monkeypatch.setattr(image_module, "REDUCE_ABOVE_PIXELS", 10_000)  # stands for a picture of over 16 MP
    tensor = ImagePreprocessor(32)(_palette_png((400, 300)))
    assert tensor.shape == (3, 32, 32) and torch.isfinite(tensor).all()
