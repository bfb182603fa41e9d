"""Small random models, their input batches and media files for the runtime tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile
import torch
from PIL import Image, ImageDraw

WIDE_TOWER = dict(width=64, depth=2, heads=4, mlp_dim=256)


def wide_model(seed: int = 0):
    """A three-tower model wider than the tiny one (rounding errors of 64-wide layers, not of 32-wide ones),
    still fast: 32-px images, 16-token texts, 1.28 s sounds."""
    import omnibind

    torch.manual_seed(seed)
    return omnibind.create(
        "Ti/16", embed_dim=64,
        image=dict(WIDE_TOWER, image_size=32, patch_size=8),
        text=dict(WIDE_TOWER, vocab_size=64, max_len=16),
        audio=dict(WIDE_TOWER, n_mels=32, clip_seconds=1.28, patch_size=8),
    ).eval()


def two_tower_model(seed: int = 0):
    """`wide_model`'s image and text towers at depth 1: what the ONNX tests export (the exporter takes seconds a
    tower, and the audio tower's export is tested with the exporter)."""
    import omnibind

    torch.manual_seed(seed)
    tower = dict(WIDE_TOWER, depth=1)
    return omnibind.create("Ti/16", modalities=("image", "text"), embed_dim=64,
                           image=dict(tower, image_size=32, patch_size=8), text=dict(tower, vocab_size=64, max_len=16)
                           ).eval()


def uneven_rows(model, seed: int = 0, spread: float = 30.0):
    """`model` with every nn.Linear's output rows scaled by log-uniform factors in [1/spread, spread] (in place):
    rows whose ranges differ, as a trained layer's do, where one int8 scale per tensor rounds the small ones
    coarsely and one per output channel does not."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in model.modules():
            if isinstance(layer, torch.nn.Linear):
                exponent = torch.rand(layer.out_features, 1, generator=generator) * 2 - 1
                layer.weight.mul_(spread ** exponent)
    return model


def batches(seed: int = 1, n: int = 6) -> dict[str, torch.Tensor]:
    """Preprocessed batches of every tower of `wide_model`, the same on every call."""
    generator = torch.Generator().manual_seed(seed)
    return {"image": torch.rand(n, 3, 32, 32, generator=generator) * 2 - 1,
            "text": torch.randint(3, 64, (n, 16), generator=generator),
            "audio": torch.randn(n, 32, 128, generator=generator)}


def write_media(folder: Path, pictures: int = 5, sounds: int = 2) -> Path:
    """Drawn PNGs and short tones in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    colours = ["red", "blue", "green", "orange", "purple", "black"]
    for i in range(pictures):
        image = Image.new("RGB", (40, 36), "white")
        ImageDraw.Draw(image).ellipse((4 + i, 4, 30, 30 - i), fill=colours[i % len(colours)])
        image.save(folder / f"picture{i}.png")
    t = np.arange(8000) / 16000
    for i in range(sounds):
        soundfile.write(folder / f"tone{i}.wav", (0.4 * np.sin(2 * np.pi * (220 + 110 * i) * t)).astype("float32"),
                        16000)
    return folder
