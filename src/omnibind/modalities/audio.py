"""The audio modality: its front-end settings (the one copy that the tower, the preprocessor, the data
path, evaluation and export read), the log-mel ViT tower, sound files and waveform previews."""

from __future__ import annotations

import importlib
import io
import math
import struct
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import torch
from torch import nn

from omnibind.errors import InputError, UploadError
from omnibind.modalities.base import InputSpec, Modality, Preprocessor, TowerConfig

MAX_AUDIO_SECONDS = 600.0  # longest accepted upload
WAVEFORM_SIZE = (256, 128)
WAVEFORM_SECONDS = 60.0  # only the start of a long sound is drawn
BACKGROUND, FOREGROUND, AXIS = (238, 247, 245), (15, 118, 110), (190, 214, 210)
_DECODER_ERRORS: tuple[type[BaseException], ...] = (RuntimeError, ValueError, TypeError, OSError, EOFError)


@dataclass(frozen=True)
class AudioSettings:
    """How waveforms become log-mel features; defaults are Whisper's front end with 128 mels, 10 s clips."""

    sample_rate: int = 16000
    n_fft: int = 400
    hop_length: int = 160
    n_mels: int = 128
    clip_seconds: float = 10.0

    def __post_init__(self) -> None:
        for name in ("sample_rate", "n_fft", "hop_length", "n_mels"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise InputError(f"AudioSettings.{name}", f"got {value!r}", "a positive integer")
        if not math.isfinite(self.clip_seconds) or self.num_samples <= self.n_fft // 2:
            raise InputError(
                "AudioSettings.clip_seconds",
                f"got {self.clip_seconds!r} ({self.num_samples} samples)",
                f"a clip longer than n_fft // 2 = {self.n_fft // 2} samples",
            )

    @property
    def num_samples(self) -> int:
        """Samples in one clip: every waveform is cropped or zero-padded to this length."""
        return round(self.clip_seconds * self.sample_rate)

    @property
    def num_frames(self) -> int:
        """Feature frames of one clip (the STFT gives one more; the last is dropped as in Whisper)."""
        return self.num_samples // self.hop_length


FRONT_END_FIELDS = tuple(f.name for f in fields(AudioSettings))

AUDIO_TOWER_KINDS = {
    "vit": "omnibind.models.audio",  # omnibind's log-mel ViT
    "whisper": "omnibind.models.whisper",  # Whisper's encoder (native) with a pooling head to train
    "htsat": "omnibind.models.clap_audio",  # CLAP's HTSAT (adapter over transformers' Swin stages) + its head
    "connected": "omnibind.compose.connected",  # a foreign tower + a connector into this space (`omnibind compose`)
}
"""Audio tower kinds → the module that builds them: `Model(config, embed_dim)`, and where the kind has its
own front end, `input_spec(config)`, `build_preprocessor(config)` and `summary(config)`."""


@dataclass
class AudioConfig(TowerConfig):
    """Audio tower: log-mel spectrograms (n_mels × frames, from `front_end`) cut into square patches, or
    another `kind` of tower (AUDIO_TOWER_KINDS) whose extra settings sit in `options`."""

    front_end: AudioSettings = field(default_factory=AudioSettings)
    patch_size: int = 16
    kind: str = "vit"
    options: dict[str, Any] = field(default_factory=dict)
    # Left out of the saved config while at their defaults, so that configs (and the search index's model
    # fingerprints) written before tower kinds existed stay byte for byte the same.
    LAYOUT_OPTIONAL: ClassVar[tuple[str, ...]] = ("kind", "options")

    def __post_init__(self) -> None:
        if self.kind not in AUDIO_TOWER_KINDS:
            raise InputError("towers.audio.kind", f"is {self.kind!r}", f"one of {sorted(AUDIO_TOWER_KINDS)}")

    @property
    def num_frames(self) -> int:
        """Spectrogram frames of one clip, as the front end emits them."""
        return self.front_end.num_frames


class Audio(Modality):
    """Sounds: WAV, FLAC, OGG (Vorbis/Opus), MP3."""

    name = "audio"
    config_class = AudioConfig
    extensions = ("flac", "wav", "ogg", "oga", "opus", "mp3")
    canonical_extensions: ClassVar[dict[str, str]] = {"oga": "ogg"}
    templates = ("the sound of {}.",)
    input_name = "log_mel"
    expected = "an audio file libsndfile can decode: WAV, FLAC, OGG (Vorbis/Opus) or MP3"
    noun = "a sound"

    def resolve_config(self, values: dict[str, Any]) -> dict[str, Any]:
        """Front-end fields given flat (checkpoints before the registry, `n_mels: 32` overrides) move into
        `front_end`; a dict there becomes AudioSettings."""
        values = dict(values)
        front = values.pop("front_end", None) or {}
        front = dict(front.__dict__) if isinstance(front, AudioSettings) else dict(front)
        for name in FRONT_END_FIELDS:
            if name in values:
                front[name] = values.pop(name)
        unknown = sorted(set(front) - set(FRONT_END_FIELDS))
        if unknown:
            raise InputError("towers.audio.front_end", f"unknown field(s) {unknown}",
                             f"fields among {FRONT_END_FIELDS}")
        values["front_end"] = AudioSettings(**front)
        return values

    def build_tower(self, config: TowerConfig, embed_dim: int) -> nn.Module:
        assert isinstance(config, AudioConfig)
        tower: nn.Module = _kind_module(config).Model(config, embed_dim)
        return tower

    def input_spec(self, config: TowerConfig) -> InputSpec:
        assert isinstance(config, AudioConfig)
        own = getattr(_kind_module(config), "input_spec", None)
        if own is not None:
            spec: InputSpec = own(config)
            return spec
        return InputSpec((config.front_end.n_mels, config.num_frames), torch.float32)

    def random_input(self, config: TowerConfig, batch: int, generator: torch.Generator) -> torch.Tensor:
        """Values spread like scaled log-mel features (about -1.5 to 1.5)."""
        spec = self.input_spec(config)
        return torch.rand((batch, *spec.shape), generator=generator) * 3 - 1.5

    def summary(self, config: TowerConfig, preprocessor: Preprocessor | None) -> str:
        assert isinstance(config, AudioConfig)
        f = config.front_end
        own = getattr(_kind_module(config), "summary", None)
        detail = f"patch {config.patch_size}" if own is None else str(own(config))
        return f"{f.clip_seconds:g}s @ {f.sample_rate} Hz, {f.n_mels} mels, {detail}"

    def build_preprocessor(self, config: TowerConfig, assets: dict[str, Path]) -> Preprocessor:
        from omnibind.preprocess.audio import AudioPreprocessor

        assert isinstance(config, AudioConfig)
        own = getattr(_kind_module(config), "build_preprocessor", None)
        if own is not None:
            processor: Preprocessor = own(config)
            return processor
        return AudioPreprocessor(config.front_end)

    def validate(self, data: bytes) -> str | None:
        return wav_truncation(data)

    def sniff(self, data: bytes) -> bool:
        import soundfile

        try:
            soundfile.info(io.BytesIO(data))
            return True
        except (soundfile.SoundFileError, *_DECODER_ERRORS):
            return False

    def check_header(self, data: bytes, field: str) -> None:
        import soundfile

        try:
            info = soundfile.info(io.BytesIO(data))
        except (soundfile.SoundFileError, *_DECODER_ERRORS) as err:
            raise UploadError(422, field, f"cannot decode audio ({_reason(err)})", self.expected) from err
        if info.frames <= 0:
            raise UploadError(422, field, "audio has no samples", "a sound of at least one sample")
        if info.duration > MAX_AUDIO_SECONDS:
            raise UploadError(413, field, f"sound of {info.duration:.0f} s is too long",
                              f"at most {MAX_AUDIO_SECONDS:.0f} s")

    def describe(self, data: bytes, name: str) -> dict[str, Any]:
        """Duration in seconds, sample rate and channel count from the audio header."""
        return _header_details(io.BytesIO(data), name)

    def describe_file(self, path: Path, name: str) -> dict[str, Any]:
        """`describe` from the file's header only (a long recording is not read)."""
        return _header_details(str(path), name)

    def preview(self, path: Path) -> tuple[bytes, str]:
        """PNG of the waveform: per pixel column, the min..max of its samples (mono mix)."""
        return waveform_png(path), "image/png"

    def save_example(self, source: Any, config: TowerConfig, folder: Path, stem: str) -> str:
        """The clip as the model hears it: a WAV at the front end's sample rate."""
        import soundfile

        from omnibind.preprocess.audio import load_audio

        assert isinstance(config, AudioConfig)
        rate = config.front_end.sample_rate
        target = folder / f"{stem}.wav"
        soundfile.write(target, load_audio(source, rate).numpy(), rate)
        return target.name


def _kind_module(config: AudioConfig) -> ModuleType:
    """The module that builds this kind of audio tower (imported on first use)."""
    return importlib.import_module(AUDIO_TOWER_KINDS[config.kind])


def _header_details(source: str | io.BytesIO, name: str) -> dict[str, Any]:
    """Duration, sample rate and channels from the header of a file or in-memory bytes."""
    import soundfile

    try:
        info = soundfile.info(source)
    except (soundfile.SoundFileError, *_DECODER_ERRORS) as err:
        raise InputError(name, f"cannot read audio header ({_reason(err)})", "an audio file libsndfile can decode") \
            from err
    return {"duration": float(info.duration), "sample_rate": int(info.samplerate), "channels": int(info.channels)}


def waveform_png(path: str | Path, size: tuple[int, int] = WAVEFORM_SIZE) -> bytes:
    """PNG bytes of the sound's waveform: per pixel column, the min..max of its samples (mono mix)."""
    import numpy as np
    import soundfile
    from PIL import Image, ImageDraw

    with soundfile.SoundFile(str(path)) as sound:
        frames = min(sound.frames, int(WAVEFORM_SECONDS * sound.samplerate))
        samples = sound.read(frames, dtype="float32", always_2d=True).mean(axis=1)
    width, height = size
    image = Image.new("RGB", size, BACKGROUND)
    draw = ImageDraw.Draw(image)
    middle, margin = height / 2, 8
    draw.line([(margin, middle), (width - margin, middle)], fill=AXIS)
    if samples.size:
        peak = max(float(np.abs(samples).max()), 1e-6)
        columns = np.array_split(samples / peak, min(width - 2 * margin, samples.size))
        step = (width - 2 * margin) / len(columns)
        scale = middle - margin
        for x, column in enumerate(columns):
            left = margin + x * step
            top, bottom = middle - float(column.max()) * scale, middle - float(column.min()) * scale
            draw.rectangle([left, top, max(left, left + step - 1), max(top + 1, bottom)], fill=FOREGROUND)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


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


def _reason(err: BaseException) -> str:
    """libsndfile's message without the in-memory file object's repr."""
    detail = str(getattr(err, "error_string", "") or err).strip()
    return "not a recognised audio format" if detail.startswith(("File does not exist", "Error opening")) else detail


AUDIO = Audio()
