"""Decoding and preprocessing one sample into tower inputs, and collating examples into a batch dict.

Runs inside the DataLoader workers. Anything wrong with one sample becomes a SampleSkip with a reason;
nothing here raises for bad data, so one broken file never stops a training run.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import torch

from omnibind.data.samples import ManifestLine, RawSample
from omnibind.data.skips import (
    AUDIO_TRUNCATED,
    AUDIO_UNDECODABLE,
    IMAGE_UNDECODABLE,
    NO_MODALITY,
    TEXT_INVALID,
    TEXT_NOT_UTF8,
    SampleSkip,
)
from omnibind.errors import InputError

MODALITIES = ("image", "text", "audio")
_UNDECODABLE = {"image": IMAGE_UNDECODABLE, "audio": AUDIO_UNDECODABLE}


@dataclass(frozen=True)
class InputSpec:
    """Shape (without batch) and dtype of one tower's input, for zeros where an example lacks it."""

    shape: tuple[int, ...]
    dtype: torch.dtype


def input_specs(processors: dict[str, Any]) -> dict[str, InputSpec]:
    """What each processor returns, read from its settings (ImagePreprocessor, AudioPreprocessor, Tokenizer)."""
    if not processors:
        raise InputError("processors", "none given", "a dict with any of 'image', 'text', 'audio'")
    specs: dict[str, InputSpec] = {}
    for name, processor in processors.items():
        if name not in MODALITIES:
            raise InputError("processors", f"unknown modality {name!r}", f"keys among {MODALITIES}")
        try:
            if name == "image":
                height, width = processor.size
                specs[name] = InputSpec((3, int(height), int(width)), torch.float32)
            elif name == "audio":
                settings = processor.settings
                specs[name] = InputSpec((int(settings.n_mels), int(settings.num_frames)), torch.float32)
            else:
                specs[name] = InputSpec((int(processor.max_len),), torch.int64)
        except (AttributeError, TypeError, ValueError) as err:
            raise InputError(f"processors[{name!r}]", f"cannot tell its output shape ({err})",
                             "a processor from omnibind.processors.build_processors") from err
    return specs


@dataclass
class Example:
    """One decoded example: its key and a tensor per modality it has."""

    key: str
    tensors: dict[str, torch.Tensor]


def decode(raw: RawSample | ManifestLine, processors: dict[str, Any]) -> Example:
    """Preprocess every modality the sample has and the processors want; SampleSkip when unusable."""
    sample = raw.materialize()
    tensors: dict[str, torch.Tensor] = {}
    for modality, processor in processors.items():
        ext = sample.field_for(modality)
        if ext is None:
            continue
        data = sample.read(ext)
        if modality == "text":
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError as err:
                raise SampleSkip(TEXT_NOT_UTF8, sample.key, str(err)) from err
            if text.strip():  # empty text means "no text": the tokenizer rejects it by design
                try:
                    tensors[modality] = processor([text.strip()])[0]
                except Exception as err:  # a tokenizer failure skips the sample, never the run
                    raise SampleSkip(TEXT_INVALID, f"{sample.key}.{ext}", f"{err.__class__.__name__}: {err}") from err
            continue
        if modality == "audio" and (problem := wav_truncation(data)):
            raise SampleSkip(AUDIO_TRUNCATED, f"{sample.key}.{ext}", problem)
        try:
            tensors[modality] = processor(data)
        except Exception as err:  # any decoder failure (PIL, libsndfile, ...) skips the sample, never the run
            detail = err.problem if isinstance(err, InputError) else f"{err.__class__.__name__}: {err}"
            raise SampleSkip(_UNDECODABLE[modality], f"{sample.key}.{ext}", detail) from err
    if not tensors:
        raise SampleSkip(NO_MODALITY, sample.key,
                         f"has fields {sorted(sample.fields)}, needs one of {sorted(processors)}")
    return Example(sample.key, tensors)


def wav_truncation(data: bytes) -> str | None:
    """For a RIFF/WAVE file whose data chunk claims more bytes than are present, say so (libsndfile would
    silently decode the shorter clip); None for complete WAVs and every other format."""
    if len(data) < 12 or data[:4] not in (b"RIFF", b"RIFX") or data[8:12] != b"WAVE":
        return None
    order = "<" if data[:4] == b"RIFF" else ">"
    offset = 12
    while offset + 8 <= len(data):
        chunk, size = data[offset : offset + 4], struct.unpack(order + "I", data[offset + 4 : offset + 8])[0]
        if chunk == b"data":
            available = len(data) - offset - 8
            if size != 0xFFFFFFFF and size > available:  # 0xFFFFFFFF: streaming writers leave the size open
                return f"data chunk declares {size} bytes, file holds {available}"
            return None
        offset += 8 + size + (size & 1)
    return "no data chunk"


def collate(examples: list[Example], specs: dict[str, InputSpec]) -> dict[str, Any]:
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
