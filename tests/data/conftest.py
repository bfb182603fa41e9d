"""Fixtures for the data tests: a small manifest of real-format media files, its shards, and processors."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile
from PIL import Image

from omnibind.data.pack import pack
from omnibind.preprocess.audio import AudioPreprocessor, AudioSettings
from omnibind.preprocess.image import ImagePreprocessor
from omnibind.preprocess.text import Tokenizer

N_EXAMPLES = 37  # prime, so batches and shards never divide it evenly
SHARD_SIZE = 5
WORDS = "red green blue cat dog bird piano guitar drum apple tree car".split()


@dataclass
class SmallSet:
    """A manifest, its shards (as a brace pattern) and the keys and modalities every example has."""

    folder: Path
    manifest: Path
    pattern: str
    shards: list[Path]
    modalities: dict[str, set[str]]

    @property
    def keys(self) -> set[str]:
        return set(self.modalities)


def _tone(path: Path, index: int, seconds: float = 0.15, rate: int = 8000) -> None:
    t = np.arange(round(seconds * rate)) / rate
    soundfile.write(path, (0.3 * np.sin(2 * np.pi * (200 + 37 * index) * t)).astype(np.float32), rate)


def write_media_manifest(folder: Path, n: int = N_EXAMPLES) -> tuple[Path, dict[str, set[str]]]:
    """n examples cycling through every non-empty subset of image / text / audio; PNG, JPEG, WAV and FLAC."""
    folder.mkdir(parents=True, exist_ok=True)
    subsets = [("image", "text", "audio"), ("image", "text"), ("audio", "text"), ("image",), ("audio",),
               ("image", "audio")]
    lines, modalities = [], {}
    for i in range(n):
        key = f"ex{i:03d}"
        chosen = subsets[i % len(subsets)]
        entry: dict = {"key": key, "meta": {"index": i}}
        if "image" in chosen:
            image = Image.new("RGB", (20 + i % 7, 12 + i % 5), (i * 6 % 256, 80, 200 - i))
            name = f"{key}.{'jpg' if i % 2 else 'png'}"
            image.save(folder / name)
            entry["image"] = name
        if "audio" in chosen:
            name = f"{key}.{'flac' if i % 2 else 'wav'}"
            _tone(folder / name, i)
            entry["audio"] = name
        if "text" in chosen:
            entry["text"] = f"a {WORDS[i % len(WORDS)]} and a {WORDS[(i * 5) % len(WORDS)]}"
        lines.append(json.dumps(entry))
        modalities[key] = set(chosen)
    manifest = folder / "manifest.jsonl"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest, modalities


@pytest.fixture(scope="session")
def small_set(tmp_path_factory: pytest.TempPathFactory) -> SmallSet:
    """37 examples with every modality combination, packed into 8 shards of at most 5."""
    folder = tmp_path_factory.mktemp("small_set")
    manifest, modalities = write_media_manifest(folder / "files")
    report = pack(manifest, folder / "shards", shard_size=SHARD_SIZE, show_progress=False)
    return SmallSet(folder, manifest, report.pattern, report.paths, modalities)


@pytest.fixture(scope="session")
def processors(spiece_model: Path) -> dict:
    """Small processors: 16 px images, 8-token texts, 8-mel 0.1 s audio."""
    return {"image": ImagePreprocessor(16), "text": Tokenizer(spiece_model, max_len=8),
            "audio": AudioPreprocessor(AudioSettings(n_mels=8, clip_seconds=0.1))}
