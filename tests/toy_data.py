"""Depth–caption examples of the toy modality (tests/toy_modality.py): real .npy files named in a JSONL
manifest, as `omnibind data pack` takes them, with a class label per example."""

from __future__ import annotations

import json
from pathlib import Path

from toy_modality import depth_map, npy_bytes

CLASSES = ("floor", "slope", "wall", "ramp")  # depth_map(label): a plane tilted by label × 45°
DEPTH_ONLY, TEXT_ONLY = 4, 5  # i % 6 == 4: no caption; i % 6 == 5: no depth map


def write_depth_manifest(folder: Path, n: int = 12) -> tuple[Path, dict[str, set[str]]]:
    """n examples: depth map + caption, except every sixth is depth only and every sixth text only; the
    manifest and the modalities of each key."""
    folder.mkdir(parents=True, exist_ok=True)
    lines, modalities = [], {}
    for i in range(n):
        key, label = f"d{i:02d}", i % len(CLASSES)
        entry: dict = {"key": key, "meta": {"label": CLASSES[label]}}
        if i % 6 != TEXT_ONLY:
            (folder / f"{key}.npy").write_bytes(npy_bytes(depth_map(label, seed=i)))
            entry["depth"] = f"{key}.npy"
        if i % 6 != DEPTH_ONLY:
            entry["text"] = f"a {CLASSES[label]} number {i}"
        lines.append(json.dumps(entry))
        modalities[key] = {m for m in ("depth", "text") if m in entry}
    manifest = folder / "manifest.jsonl"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest, modalities
