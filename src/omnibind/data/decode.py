"""Decoding and preprocessing one sample into tower inputs, and collating examples into a batch dict.

Runs inside the DataLoader workers. Anything wrong with one sample becomes a SampleSkip with a reason;
nothing here raises for bad data, so one broken file never stops a training run. Which fields hold a
modality, how their bytes are read and checked, and how a skip is worded all come from the registry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

import omnibind.modalities as registry
from omnibind.data.samples import ManifestLine, RawSample
from omnibind.data.skips import NO_MODALITY, SampleSkip
from omnibind.errors import InputError
from omnibind.modalities import InputSpec, Modality, Preprocessor, TowerConfig

__all__ = ["Example", "InputSpec", "collate", "decode", "input_specs", "processor_specs", "specs_for"]


def input_specs(towers: Mapping[str, TowerConfig]) -> dict[str, InputSpec]:
    """What each tower takes (shape without batch, dtype), from its modality and tower config: what the
    loader zero-fills where an example lacks a modality. Pass `model.config.towers`."""
    return {name: registry.get(name).input_spec(config) for name, config in towers.items()}


def processor_specs(processors: Mapping[str, Any]) -> dict[str, InputSpec]:
    """Specs read off the processors alone, for callers without tower configs: a processor's own
    `input_spec` (every built-in preprocessor has one)."""
    specs: dict[str, InputSpec] = {}
    for name, processor in processors.items():
        registry.get(name)  # an unknown modality is an error naming the registered ones
        spec = getattr(processor, "input_spec", None)
        if not isinstance(spec, InputSpec):
            raise InputError(f"processors[{name!r}]", f"cannot tell the output shape of {type(processor).__name__}",
                             "specs=input_specs(model.config.towers), or a processor with an `input_spec`")
        specs[name] = spec
    return specs


def specs_for(processors: Mapping[str, Any], specs: Mapping[str, InputSpec] | None = None) -> dict[str, InputSpec]:
    """The specs of exactly the processors' modalities: `specs` (from `input_specs`) where given, else read
    off the processors; an error names a modality that has a processor but no spec."""
    if not processors:
        raise InputError("processors", "none given", f"a dict keyed by modality ({', '.join(registry.names())})")
    if specs is None:
        return processor_specs(processors)
    for name in processors:
        registry.get(name)
    missing = sorted(set(processors) - set(specs))
    if missing:
        raise InputError("specs", f"no input spec for {missing}", "one per processor: input_specs(model.config.towers)")
    return {name: specs[name] for name in processors}


@dataclass
class Example:
    """One decoded example: its key and a tensor per modality it has."""

    key: str
    tensors: dict[str, torch.Tensor]


def decode(raw: RawSample | ManifestLine, processors: Mapping[str, Preprocessor]) -> Example:
    """Preprocess every modality the sample has and the processors want; SampleSkip when unusable."""
    sample = raw.materialize()
    tensors: dict[str, torch.Tensor] = {}
    for name, processor in processors.items():
        modality = registry.get(name)
        field = sample.field_for(name)
        if field is None:
            continue
        tensor = _decode_field(modality, processor, sample.read(field), f"{sample.key}.{field}")
        if tensor is not None:
            tensors[name] = tensor
    if not tensors:
        raise SampleSkip(NO_MODALITY, sample.key,
                         f"has fields {sorted(sample.fields)}, needs one of {sorted(processors)}")
    return Example(sample.key, tensors)


def _decode_field(modality: Modality, processor: Preprocessor, data: bytes, where: str) -> torch.Tensor | None:
    """One field's tensor; None when the field stands for "absent" (an empty caption)."""
    if problem := modality.validate(data):
        raise SampleSkip(modality.skip_reason("invalid"), where, problem)
    try:
        source = modality.read_field(data)
    except Exception as err:  # bad stored bytes (text not UTF-8...) skip the sample, never the run
        raise SampleSkip(modality.skip_reason("read"), where, _detail(err)) from err
    if source is None:
        return None
    try:
        return processor.one(source)
    except Exception as err:  # any decoder failure (PIL, libsndfile, a tokenizer...) skips the sample, never the run
        raise SampleSkip(modality.skip_reason("decode"), where, _detail(err)) from err


def _detail(err: Exception) -> str:
    return err.problem if isinstance(err, InputError) else f"{err.__class__.__name__}: {err}"


def collate(examples: list[Example], specs: Mapping[str, InputSpec]) -> dict[str, Any]:
    """Stack examples into the batch dict: `batch[m]` (zeros where absent), `batch[m + "_mask"]`, `key`."""
    batch: dict[str, Any] = {"key": [e.key for e in examples]}
    for modality, spec in specs.items():
        values = torch.zeros((len(examples), *spec.shape), dtype=spec.dtype)
        mask = torch.zeros(len(examples), dtype=torch.bool)
        for row, example in enumerate(examples):
            tensor = example.tensors.get(modality)
            if tensor is not None:
                values[row] = tensor
                mask[row] = True
        batch[modality] = values
        batch[f"{modality}_mask"] = mask
    return batch
