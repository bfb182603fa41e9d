"""Small previews for the results grid: a JPEG of a picture, a PNG waveform of a sound (Pillow only)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import soundfile
from PIL import Image, ImageDraw

from omnibind.preprocess.image import load_image, to_rgb

THUMBNAIL_SIZE = 256
WAVEFORM_SIZE = (256, 128)
WAVEFORM_SECONDS = 60.0  # only the start of a long sound is drawn
BACKGROUND, FOREGROUND, AXIS = (238, 247, 245), (15, 118, 110), (190, 214, 210)


def image_thumbnail(path: str | Path, size: int = THUMBNAIL_SIZE) -> bytes:
    """JPEG bytes of the picture scaled to fit a size × size box (aspect kept; transparency over white)."""
    image = to_rgb(load_image(Path(path)))
    image.thumbnail((size, size), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=85)
    return out.getvalue()


def waveform_thumbnail(path: str | Path, size: tuple[int, int] = WAVEFORM_SIZE) -> bytes:
    """PNG bytes of the sound's waveform: per pixel column, the min..max of its samples (mono mix)."""
    with soundfile.SoundFile(str(path)) as sound:
        frames = min(sound.frames, int(WAVEFORM_SECONDS * sound.samplerate))
        samples = sound.read(frames, dtype="float32", always_2d=True).mean(axis=1)
    width, height = size
    image = Image.new("RGB", size, BACKGROUND)
    draw = ImageDraw.Draw(image)
    middle, margin = height / 2, 8
    draw.line([(margin, middle), (width - margin, middle)], fill=AXIS)
    if samples.size:
        peak = max(float(np.abs(samples).max()), 1e-6)
        columns = np.array_split(samples / peak, min(width - 2 * margin, samples.size))
        step = (width - 2 * margin) / len(columns)
        scale = middle - margin
        for x, column in enumerate(columns):
            left = margin + x * step
            top, bottom = middle - float(column.max()) * scale, middle - float(column.min()) * scale
            draw.rectangle([left, top, max(left, left + step - 1), max(top + 1, bottom)], fill=FOREGROUND)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()
