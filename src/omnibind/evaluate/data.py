"""Evaluation examples read from shards or manifests (the same specs the training loader takes)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence

from omnibind.data.samples import RawSample
from omnibind.data.shardlist import ShardPlan
from omnibind.data.skips import SampleSkip
from omnibind.evaluate.examples import EvalExample


def load_examples(spec: str | Sequence[str], label_field: str = "label", limit: int | None = None,
                  skipped: Counter | None = None) -> list[EvalExample]:
    """Every readable example of a shard spec, in order: media as bytes, text as str, the class name
    from the example's JSON `label_field`. Unreadable samples are counted in `skipped` by reason."""
    skipped = Counter() if skipped is None else skipped
    out: list[EvalExample] = []
    for unit in ShardPlan.build(spec, 1).units:
        for raw in unit.samples(lambda reason, key, detail: skipped.update([reason])):
            try:
                example = _example(raw.materialize(), label_field)
            except SampleSkip as skip:
                skipped.update([skip.reason])
                continue
            if example.inputs:
                out.append(example)
            if limit is not None and len(out) >= limit:
                return out
    return out


def _example(sample: RawSample, label_field: str) -> EvalExample:
    inputs: dict[str, object] = {}
    for modality in ("image", "audio"):
        ext = sample.field_for(modality)
        if ext is not None:
            inputs[modality] = sample.read(ext)
    ext = sample.field_for("text")
    if ext is not None:
        text = sample.read(ext).decode("utf-8", errors="replace").strip()
        if text:
            inputs["text"] = text
    meta = {}
    if "json" in sample.fields:
        try:
            meta = json.loads(sample.read("json"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            meta = {}
    label = meta.get(label_field) if isinstance(meta, dict) else None
    return EvalExample(sample.key, inputs, str(label) if label else None, meta if isinstance(meta, dict) else {})
