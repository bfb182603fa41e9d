"""Small media for search tests: drawn pictures (Pillow) and tones (numpy + soundfile), plus tiny models."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import soundfile
from PIL import Image, ImageDraw

COLOURS = ["red", "blue", "green", "orange", "purple", "black", "teal", "gold"]


def picture(index: int, size: tuple[int, int] = (48, 40)) -> Image.Image:
    """A drawing that differs with `index`: a coloured circle, square or triangle on white."""
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    colour = COLOURS[index % len(COLOURS)]
    shape = index % 3
    box = (6 + index % 5, 6, 34 + index % 7, 34)
    if shape == 0:
        draw.ellipse(box, fill=colour)
    elif shape == 1:
        draw.rectangle(box, fill=colour)
    else:
        draw.polygon([(box[0], box[3]), (box[2], box[3]), ((box[0] + box[2]) // 2, box[1])], fill=colour)
    return image


def png_bytes(index: int = 0) -> bytes:
    """One drawing as PNG bytes."""
    out = io.BytesIO()
    picture(index).save(out, format="PNG")
    return out.getvalue()


def tone(frequency: float, seconds: float = 0.5, rate: int = 16000) -> np.ndarray:
    """A plucked note as float32 samples: a sine with a quick attack and an exponential decay."""
    t = np.arange(int(seconds * rate)) / rate
    envelope = np.minimum(1.0, t / 0.01) * np.exp(-t * (4 + frequency / 200))
    return (0.6 * envelope * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def wav_bytes(frequency: float = 440.0) -> bytes:
    """One tone as WAV bytes."""
    out = io.BytesIO()
    soundfile.write(out, tone(frequency), 16000, format="WAV")
    return out.getvalue()


def write_media(folder: Path, images: int = 6, sounds: int = 3, start: int = 0) -> list[Path]:
    """Write drawings (PNG and JPEG, one in a subfolder) and tones (WAV and FLAC) into `folder`."""
    (folder / "sub").mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(start, start + images):
        path = folder / ("sub" if i % 4 == 3 else "") / f"picture{i:03d}.{'jpg' if i % 2 else 'png'}"
        picture(i).save(path)
        paths.append(path)
    for i in range(start, start + sounds):
        path = folder / f"tone{i:03d}.{'flac' if i % 2 else 'wav'}"
        soundfile.write(path, tone(220.0 * (1 + i)), 16000)
        paths.append(path)
    return paths


def image_text_model(spiece: Path, seed: int = 0):
    """A tiny model with image and text towers only, like a SigLIP checkpoint."""
    import torch

    import omnibind
    from helpers import TINY_TOWER
    from omnibind.preprocess.text import Tokenizer

    torch.manual_seed(seed)
    return omnibind.create(
        "Ti/16", modalities=("image", "text"), tokenizer=spiece, embed_dim=32,
        image=dict(TINY_TOWER, image_size=32, patch_size=8),
        text=dict(TINY_TOWER, vocab_size=Tokenizer(spiece).vocab_size, max_len=16),
    ).eval()
