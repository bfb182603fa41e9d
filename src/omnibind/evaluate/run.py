"""Run every evaluator on named splits and write `eval/<split>.json` (metrics + retrieval examples with
their media) for the report."""

from __future__ import annotations

import json
import mimetypes
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import omnibind.modalities as registry
from omnibind.evaluate.captioning import Shown, captioning_evaluators, shown_records
from omnibind.evaluate.examples import EvalExample, with_modality
from omnibind.evaluate.registry import Templates, evaluators_for, register_evaluator
from omnibind.evaluate.retrieval import Ranked, Retrieval
from omnibind.evaluate.zero_shot import ZeroShotClassification
from omnibind.generation.model import Generator
from omnibind.models.model import OmniBind

CLASS_NAMES = registry.TEXT.name  # the modality class names are embedded in, as prompts


def zero_shot_evaluators(examples: Sequence[EvalExample], model: OmniBind, templates: Templates) -> list[Any]:
    """Zero-shot for every media modality the model and the data have (class names go through the text
    tower, so it needs one); `templates` overrides the prompts per modality (default: the modality's own)."""
    if CLASS_NAMES not in model.modalities:
        return []
    return [ZeroShotClassification(list(examples), modality, templates.get(modality))
            for modality in registry.media_names()
            if modality in model.modalities and with_modality(examples, modality)]


def retrieval_evaluators(examples: Sequence[EvalExample], model: OmniBind, templates: Templates) -> list[Any]:
    """Retrieval in both directions for every modality pair the model and the data have (a generator embeds
    nothing, so none for it)."""
    return [] if isinstance(model, Generator) else [Retrieval(examples)]


register_evaluator("zero_shot", zero_shot_evaluators)
register_evaluator("retrieval", retrieval_evaluators)
register_evaluator("captioning", captioning_evaluators)


def evaluate_splits(model: OmniBind, splits: dict[str, list[EvalExample]], out_dir: Path | None = None,
                    templates: Mapping[str, Sequence[str] | None] | None = None) -> dict[str, dict[str, float]]:
    """Metrics per split; with out_dir, also eval/<split>.json and the media of the kept examples."""
    results = {}
    for split, examples in splits.items():
        metrics: dict[str, float] = {}
        ranked: dict[str, list[Ranked]] = {}
        shown: list[Shown] = []
        for evaluator in evaluators_for(examples, model, templates):
            metrics.update(evaluator.run(model))
            ranked.update(getattr(evaluator, "ranked", {}))
            shown += getattr(evaluator, "shown", [])
        results[split] = metrics
        if out_dir is not None:
            write_split(out_dir / "eval", split, metrics, ranked, len(examples), model, shown)
    return results


def write_split(folder: Path, split: str, metrics: dict[str, float], ranked: dict[str, list[Ranked]],
                count: int, model: OmniBind, shown: Sequence[Shown] = ()) -> Path:
    """eval/<split>.json with metrics and, per retrieval direction, queries with their top results (media
    saved as each modality shows them, for the model's towers: thumbnails, clips at its sample rate), and a
    generator's example captions beside their media and references."""
    media = folder / "media"
    media.mkdir(parents=True, exist_ok=True)
    config = model.config
    towers = getattr(config, "encoders", config).towers  # a Generator's towers are its config's encoders
    examples = [
        {"direction": direction, "query": _item(r.query, direction.split("->")[0], media, towers),
         "results": [{**_item(e, direction.split("->")[1], media, towers), "score": s} for e, s in r.results]}
        for direction, rows in ranked.items() for r in rows
    ]
    path = folder / f"{split}.json"
    captions = shown_records(shown, lambda example, modality: _item(example, modality, media, towers))
    path.write_text(json.dumps({"split": split, "examples_count": count, "metrics": metrics,
                                "examples": examples, "captions": captions}, indent=1))
    return path


def _item(example: EvalExample, modality: str, media: Path, towers: Mapping[str, Any]) -> dict[str, Any]:
    """The report's view of one example in one modality: its text (modalities without files), or the file
    its modality saves (`Modality.save_example`) with that file's media type."""
    item: dict[str, Any] = {"key": example.key, "modality": modality, "label": example.label}
    source = example.inputs[modality]
    handler = registry.get(modality)
    if not handler.is_media:
        item["text"] = str(source)
        return item
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{example.key}-{modality}")  # one example may hold several media
    name = handler.save_example(source, towers[modality], media, stem)
    item["media"] = f"media/{name}"
    item["media_type"] = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return item
