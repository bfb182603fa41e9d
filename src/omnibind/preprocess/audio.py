"""Audio preprocessing for the audio tower: decode, mono, resample, fixed-length clip, Whisper log-mel.

The features are Whisper's log-mel spectrogram, computed in torch so that it runs on any device and in
batches, and equal (to float32 rounding) to ``transformers.WhisperFeatureExtractor`` on the same waveform.

The documented normalisation, step by step, for a mono waveform ``x`` at ``settings.sample_rate``:

1. ``X = STFT(x)`` with ``n_fft`` (400) and ``hop_length`` (160), a periodic Hann window of length ``n_fft``,
   ``center=True`` (the waveform is reflect-padded by ``n_fft // 2`` on both sides), one-sided spectrum.
2. Power spectrum ``P = |X|²``, shape (n_fft // 2 + 1, frames).
3. ``M = W.T @ P`` with ``W`` a Slaney-style mel filterbank (:func:`mel_filterbank`): ``n_mels`` triangles
   equally spaced on the Slaney mel scale (linear below 1 kHz, logarithmic above) from 0 Hz to sr / 2, each
   divided by its width in Hz (Slaney area normalisation, ``2 / (f_right - f_left)``).
4. ``L = log10(max(M, 1e-10))``.
5. Drop the last STFT frame, as Whisper does, so a clip of ``T`` samples gives ``T // hop_length`` frames.
6. Dynamic range: ``L = max(L, max(L) - 8)``, where ``max(L)`` is taken per example (an 80 dB range).
7. Scale: ``(L + 4) / 4``, which maps the typical range to roughly [-1, 1].
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
import soundfile
import soxr
import torch

from omnibind.errors import InputError
from omnibind.media import check_file, source_name
from omnibind.modalities.audio import AudioSettings
from omnibind.modalities.base import InputSpec

DEFAULT_SETTINGS = AudioSettings()  # frozen, so one shared default is safe

__all__ = [
    "AudioPreprocessor",
    "AudioSettings",
    "AudioSource",
    "fit_length",
    "load_audio",
    "log_mel_spectrogram",
    "mel_filterbank",
]

AudioSource = str | os.PathLike | bytes | torch.Tensor | np.ndarray
"""A path or encoded bytes (decoded and resampled), or a mono waveform already at the settings' rate."""

_EXPECTED_FORMATS = "an audio file libsndfile can decode: WAV, FLAC, OGG (Vorbis/Opus) or MP3"
_LOG_FLOOR = 1e-10  # mel power floor before log10, as in Whisper
_DYNAMIC_RANGE = 8.0  # log10 units kept below each example's maximum (80 dB)
MAX_AMPLITUDE = 1e4  # louder float samples overflow the float32 power spectrum (1e30 squared is inf)
RESAMPLE_MARGIN_SECONDS = 0.1  # read past the clip so the resampler's filter sees what follows its end


# ---------------------------------------------------------------------------------------------- decoding


def _decode(source: str | os.PathLike | bytes, max_seconds: float | None = None) -> tuple[np.ndarray, int]:
    """Decode to a (frames, channels) float32 array and its rate, at most `max_seconds` from the start (the
    rest of a long file is never read); decoder failures become InputErrors."""
    name = source_name(source)
    if isinstance(source, bytes | bytearray):
        if len(source) == 0:
            raise InputError(name, "no data (0 bytes)", _EXPECTED_FORMATS)
        file: io.BytesIO | Path = io.BytesIO(bytes(source))
    else:
        file = Path(source)
        check_file(file, _EXPECTED_FORMATS)
    try:
        with soundfile.SoundFile(file) as sound:
            rate = int(sound.samplerate)
            frames = -1 if max_seconds is None else math.ceil(max_seconds * rate)
            data = sound.read(frames, dtype="float32", always_2d=True)
    except (soundfile.SoundFileError, RuntimeError, ValueError, TypeError, OSError, EOFError) as err:
        raise InputError(name, f"cannot decode audio ({_decoder_detail(err)})", _EXPECTED_FORMATS) from err
    return data, rate


def _decoder_detail(err: Exception) -> str:
    """libsndfile's reason without its 'Error opening <object>' prefix, reworded where it misleads."""
    detail = str(getattr(err, "error_string", "") or err).strip()
    # The file was checked to exist; libsndfile says this when an .mp3-named file is not MPEG audio.
    if detail.startswith("File does not exist"):
        return "not a recognised audio format"
    return detail


def _to_mono(data: np.ndarray) -> np.ndarray:
    """Average the channels of a (frames, channels) array; a single channel is returned as is (bit-exact)."""
    if data.shape[1] == 1:
        return np.ascontiguousarray(data[:, 0])
    return np.ascontiguousarray(data.mean(axis=1, dtype=np.float32))


def _resample(mono: np.ndarray, rate: int, sample_rate: int) -> np.ndarray:
    """Resample with soxr (HQ) when the rates differ; equal rates return the input untouched."""
    if rate == sample_rate:
        return mono
    return soxr.resample(mono, rate, sample_rate, quality="HQ").astype(np.float32, copy=False)


def load_audio(source: str | os.PathLike | bytes, sample_rate: int, max_seconds: float | None = None) -> torch.Tensor:
    """Decode a file or bytes (anything soundfile reads), average to mono and resample to ``sample_rate``;
    with ``max_seconds``, only that much from the start is read and decoded.

    Returns a float32 tensor of shape (T,). Raises InputError naming the file for missing, empty,
    undecodable, zero-length, non-finite or absurdly loud audio.
    """
    if not isinstance(sample_rate, int) or isinstance(sample_rate, bool) or sample_rate <= 0:
        raise InputError("sample_rate", f"got {sample_rate!r}", "a positive integer in Hz")
    name = source_name(source)
    data, rate = _decode(source, max_seconds)
    if data.shape[0] == 0:
        raise InputError(name, "audio has zero samples", "at least one sample of audio")
    if not np.isfinite(data).all():
        raise InputError(name, "audio contains NaN or infinite samples", "finite sample values")
    peak = float(np.abs(data).max())
    if peak > MAX_AMPLITUDE:
        raise InputError(name, f"sample values reach {peak:.3g}", f"samples within ±{MAX_AMPLITUDE:g} (audio is "
                                                                  "normally within ±1)")
    return torch.from_numpy(_resample(_to_mono(data), rate, sample_rate))


# ---------------------------------------------------------------------------------------------- features


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney mel scale: linear (3 mels per 200 Hz) below 1 kHz, logarithmic above."""
    log_step = math.log(6.4) / 27.0
    linear = 3.0 * hz / 200.0
    logarithmic = 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / log_step
    return np.where(hz >= 1000.0, logarithmic, linear)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    """Inverse of :func:`_hz_to_mel`."""
    log_step = math.log(6.4) / 27.0
    linear = 200.0 * mel / 3.0
    logarithmic = 1000.0 * np.exp(log_step * (mel - 15.0))
    return np.where(mel >= 15.0, logarithmic, linear)


@lru_cache(maxsize=16)
def _mel_filterbank_np(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    """Slaney filterbank in float64, (n_freqs, n_mels); cached because every batch needs it."""
    fft_freqs = np.linspace(0.0, sample_rate / 2.0, n_fft // 2 + 1)
    mel_edges = np.linspace(_hz_to_mel(np.array(0.0)), _hz_to_mel(np.array(sample_rate / 2.0)), n_mels + 2)
    hz_edges = _mel_to_hz(mel_edges)
    left, center, right = hz_edges[:-2], hz_edges[1:-1], hz_edges[2:]
    rising = (fft_freqs[:, None] - left) / (center - left)
    falling = (right - fft_freqs[:, None]) / (right - center)
    triangles = np.maximum(0.0, np.minimum(rising, falling))
    bank = triangles * (2.0 / (right - left))  # Slaney area normalisation: each filter has unit area in Hz
    bank.setflags(write=False)
    return bank


def mel_filterbank(settings: AudioSettings) -> torch.Tensor:
    """Slaney mel filterbank (Slaney scale, area-normalised, 0 Hz to sr / 2), float32 (n_freqs, n_mels)."""
    bank = _mel_filterbank_np(settings.sample_rate, settings.n_fft, settings.n_mels)
    return torch.tensor(bank, dtype=torch.float32)


def _check_waveform(waveform: torch.Tensor, settings: AudioSettings) -> None:
    """Reject waveforms the STFT cannot take: wrong rank, complex, or too short to reflect-pad."""
    if not isinstance(waveform, torch.Tensor) or waveform.dim() not in (1, 2):
        shape = tuple(waveform.shape) if isinstance(waveform, torch.Tensor) else type(waveform).__name__
        raise InputError("waveform", f"got {shape}", "a tensor of shape (T,) or (B, T)")
    if waveform.is_complex():
        raise InputError("waveform", "got a complex tensor", "a real-valued waveform")
    if waveform.shape[-1] <= settings.n_fft // 2:
        raise InputError(
            "waveform",
            f"only {waveform.shape[-1]} samples",
            f"more than n_fft // 2 = {settings.n_fft // 2} samples",
        )


def log_mel_spectrogram(waveform: torch.Tensor, settings: AudioSettings) -> torch.Tensor:
    """Whisper log-mel features (module docstring): (T,) → (n_mels, T // hop), (B, T) → (B, n_mels, T // hop).

    Runs on the waveform's device; float64 input stays float64, anything else is computed in float32.
    """
    _check_waveform(waveform, settings)
    dtype = torch.float64 if waveform.dtype == torch.float64 else torch.float32
    x = waveform.to(dtype)
    window = torch.hann_window(settings.n_fft, periodic=True, dtype=dtype, device=x.device)
    stft = torch.stft(
        x,
        n_fft=settings.n_fft,
        hop_length=settings.hop_length,
        window=window,
        center=True,
        pad_mode="reflect",
        return_complex=True,
    )
    power = stft[..., :-1].abs().pow(2)  # drop the last frame, as Whisper does
    bank = mel_filterbank(settings).to(device=x.device, dtype=dtype)
    mel = torch.matmul(bank.T, power)
    log_mel = torch.clamp(mel, min=_LOG_FLOOR).log10()
    peak = log_mel.amax(dim=(-2, -1), keepdim=True)  # per example
    log_mel = torch.maximum(log_mel, peak - _DYNAMIC_RANGE)
    return (log_mel + 4.0) / 4.0


def fit_length(
    waveform: torch.Tensor,
    num_samples: int,
    random_crop: bool = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Crop (from the start, or at a random offset) or zero-pad at the end to exactly ``num_samples``.

    Works on the last dimension, so (T,) and (B, T) both work; a random crop draws one offset from
    ``generator`` (seed it for reproducible crops).
    """
    if num_samples <= 0:
        raise InputError("num_samples", f"got {num_samples!r}", "a positive number of samples")
    length = waveform.shape[-1]
    if length > num_samples:
        start = 0
        if random_crop:
            start = int(torch.randint(0, length - num_samples + 1, (1,), generator=generator).item())
        return waveform[..., start : start + num_samples]
    if length < num_samples:
        return torch.nn.functional.pad(waveform, (0, num_samples - length))
    return waveform


# ---------------------------------------------------------------------------------------------- pipeline


class AudioPreprocessor:
    """Turns audio files, bytes or waveforms into fixed-size log-mel features for the audio tower."""

    def __init__(
        self,
        settings: AudioSettings = DEFAULT_SETTINGS,
        *,
        random_crop: bool = False,
        generator: torch.Generator | None = None,
    ) -> None:
        self.settings = settings
        self.random_crop = random_crop
        self.generator = generator

    def waveform(self, source: AudioSource) -> torch.Tensor:
        """The clip's mono waveform at the settings' rate, cropped or padded to ``settings.num_samples``."""
        if isinstance(source, np.ndarray):
            source = torch.from_numpy(source)
        if isinstance(source, torch.Tensor):
            wave = _checked_tensor(source)
        else:
            # A clip is the first num_samples (unless cropped at random): the rest of a long file is never read.
            window = None if self.random_crop else self.settings.clip_seconds + RESAMPLE_MARGIN_SECONDS
            wave = load_audio(source, self.settings.sample_rate, window)
        wave = wave.to(torch.float32)
        return fit_length(wave, self.settings.num_samples, self.random_crop, self.generator)

    def __call__(self, source: AudioSource) -> torch.Tensor:
        """Log-mel features of one clip, shape (n_mels, num_frames)."""
        return log_mel_spectrogram(self.waveform(source), self.settings)

    @property
    def input_spec(self) -> InputSpec:
        """What `one` returns: (n_mels, num_frames) float32."""
        return InputSpec((self.settings.n_mels, self.settings.num_frames), torch.float32)

    def one(self, source: AudioSource) -> torch.Tensor:
        """(n_mels, num_frames) features of one clip (the Preprocessor protocol)."""
        return self(source)

    def batch(self, sources: Sequence[AudioSource]) -> torch.Tensor:
        """Log-mel features of several clips, shape (B, n_mels, num_frames); one batched STFT for all."""
        if len(sources) == 0:
            raise InputError("sources", "empty sequence", "at least one audio source")
        waves = torch.stack([self.waveform(source) for source in sources])
        return log_mel_spectrogram(waves, self.settings)


def _checked_tensor(waveform: torch.Tensor) -> torch.Tensor:
    """Validate an already-decoded waveform: 1-D, real, non-empty and finite."""
    if waveform.dim() != 1 or waveform.is_complex() or not waveform.is_floating_point():
        raise InputError(
            "waveform",
            f"got dtype {waveform.dtype} and shape {tuple(waveform.shape)}",
            "a 1-D floating-point mono waveform at the settings' sample rate",
        )
    if waveform.numel() == 0:
        raise InputError("waveform", "audio has zero samples", "at least one sample of audio")
    if not torch.isfinite(waveform).all():
        raise InputError("waveform", "contains NaN or infinite samples", "finite sample values")
    return waveform
