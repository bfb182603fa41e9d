"""Run every evaluator on named splits and write `eval/<split>.json` (metrics + retrieval examples with
their media) for the report."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import soundfile

from omnibind.evaluate.examples import EvalExample, with_modality
from omnibind.evaluate.retrieval import Ranked, Retrieval
from omnibind.evaluate.zero_shot import ZeroShotClassification
from omnibind.models.model import OmniBind
from omnibind.preprocess.audio import load_audio
from omnibind.preprocess.image import load_image, to_rgb

THUMBNAIL = 160


def evaluators_for(examples: list[EvalExample], model: OmniBind,
                   templates: dict[str, list[str]] | None = None) -> list[Any]:
    """Zero-shot for image and audio (where labelled and the model has the tower), and retrieval;
    `templates` overrides the prompt templates per modality (default: omnibind.inference's)."""
    found: list[Any] = []
    for modality in ("image", "audio"):
        if modality in model.modalities and "text" in model.modalities and with_modality(examples, modality):
            found.append(ZeroShotClassification(examples, modality, (templates or {}).get(modality)))
    found.append(Retrieval(examples))
    return found


def evaluate_splits(model: OmniBind, splits: dict[str, list[EvalExample]], out_dir: Path | None = None,
                    templates: dict[str, list[str]] | None = None) -> dict[str, dict[str, float]]:
    """Metrics per split; with out_dir, also eval/<split>.json and the media of the kept examples."""
    results = {}
    for split, examples in splits.items():
        metrics: dict[str, float] = {}
        ranked: dict[str, list[Ranked]] = {}
        for evaluator in evaluators_for(examples, model, templates):
            metrics.update(evaluator.run(model))
            ranked.update(getattr(evaluator, "ranked", {}))
        results[split] = metrics
        if out_dir is not None:
            write_split(out_dir / "eval", split, metrics, ranked, len(examples))
    return results


def write_split(folder: Path, split: str, metrics: dict[str, float], ranked: dict[str, list[Ranked]],
                count: int) -> Path:
    """eval/<split>.json with metrics and, per retrieval direction, queries with their top results."""
    media = folder / "media"
    media.mkdir(parents=True, exist_ok=True)
    examples = [
        {"direction": direction, "query": _item(r.query, direction.split("->")[0], media),
         "results": [{**_item(e, direction.split("->")[1], media), "score": s} for e, s in r.results]}
        for direction, rows in ranked.items() for r in rows
    ]
    path = folder / f"{split}.json"
    path.write_text(json.dumps({"split": split, "examples_count": count, "metrics": metrics,
                                "examples": examples}, indent=1))
    return path


def _item(example: EvalExample, modality: str, media: Path) -> dict[str, Any]:
    """The report's view of one example in one modality: its text, or a saved thumbnail / WAV clip."""
    item: dict[str, Any] = {"key": example.key, "modality": modality, "label": example.label}
    source = example.inputs[modality]
    if modality == "text":
        item["text"] = source
        return item
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", example.key)
    if modality == "image":
        target = media / f"{name}.png"
        image = to_rgb(load_image(source))
        image.thumbnail((THUMBNAIL, THUMBNAIL))
        image.save(target)
    else:
        target = media / f"{name}.wav"
        soundfile.write(target, load_audio(source, 16000).numpy(), 16000)
    item["media"] = f"media/{target.name}"
    return item
