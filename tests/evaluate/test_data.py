"""Evaluation examples from a JSONL manifest: media, text and the class name from the example's meta."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from omnibind.evaluate.data import load_examples


def test_manifest_examples(tmp_path: Path, media_files: dict[str, Path]) -> None:
    manifest = tmp_path / "eval.jsonl"
    lines = [
        {"key": "a", "image": str(media_files["drawing"]), "text": "a red circle", "meta": {"label": "circle"}},
        {"key": "b", "audio": str(media_files["tone"]), "text": "a tone", "meta": {"label": "tone"}},
        {"key": "c", "image": str(tmp_path / "missing.png"), "text": "lost"},
        {"key": "d", "text": "text only"},
    ]
    manifest.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    skipped: Counter = Counter()
    examples = load_examples(str(manifest), skipped=skipped)
    by_key = {e.key: e for e in examples}
    assert set(by_key["a"].inputs) == {"image", "text"} and by_key["a"].label == "circle"
    assert by_key["a"].inputs["image"] == media_files["drawing"].read_bytes()
    assert by_key["b"].inputs["text"] == "a tone" and by_key["b"].label == "tone"
    assert by_key["d"].label is None and "c" not in by_key and sum(skipped.values()) == 1
    assert len(load_examples(str(manifest), limit=1)) == 1
