"""Evaluation examples read from shards or manifests (the same specs the training loader takes)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Sequence

import omnibind.modalities as registry
from omnibind.data.samples import META_EXT, RawSample
from omnibind.data.shardlist import ShardPlan
from omnibind.data.skips import SampleSkip
from omnibind.errors import InputError
from omnibind.evaluate.examples import EvalExample


def load_examples(spec: str | Sequence[str], label_field: str = "label", limit: int | None = None,
                  skipped: Counter[str] | None = None) -> list[EvalExample]:
    """Every readable example of a shard spec, in order: media as bytes, text as str, the class name
    from the example's JSON `label_field`. Unreadable samples are counted in `skipped` by reason."""
    out: list[EvalExample] = []
    for example in iter_examples(spec, label_field, skipped):
        out.append(example)
        if limit is not None and len(out) >= limit:
            break
    return out


def iter_examples(spec: str | Sequence[str], label_field: str = "label",
                  skipped: Counter[str] | None = None) -> Iterator[EvalExample]:
    """The readable examples of a shard spec one at a time, in order (as `load_examples` lists them)."""
    skipped = Counter() if skipped is None else skipped
    for unit in ShardPlan.build(spec, 1).units:
        for raw in unit.samples(lambda reason, key, detail: skipped.update([reason])):
            try:
                example = _example(raw.materialize(), label_field)
            except SampleSkip as skip:
                skipped.update([skip.reason])
                continue
            if example.inputs:
                yield example


def _example(sample: RawSample, label_field: str) -> EvalExample:
    """Every registered modality the sample holds, read by its modality (media: bytes; text: the string)."""
    inputs: dict[str, object] = {}
    for modality in registry.all_modalities():
        field = sample.field_for(modality.name)
        if field is None:
            continue
        try:
            source = modality.read_field(sample.read(field))
        except InputError as err:
            raise SampleSkip(modality.skip_reason("read"), f"{sample.key}.{field}", err.problem) from err
        if source is not None:
            inputs[modality.name] = source
    meta = {}
    if META_EXT in sample.fields:
        try:
            meta = json.loads(sample.read(META_EXT))
        except (json.JSONDecodeError, UnicodeDecodeError):
            meta = {}
    label = meta.get(label_field) if isinstance(meta, dict) else None
    return EvalExample(sample.key, inputs, str(label) if label else None, meta if isinstance(meta, dict) else {})
