"""CLAP's audio front end, equal (within 1e-4 dB) to transformers' ``ClapFeatureExtractor``: log-mel
spectrograms in decibels, with its truncation ("rand_trunc", "fusion") and padding ("repeatpad", "repeat",
"pad") modes, computed in torch (float64, like transformers' numpy code).

For a mono waveform ``x`` at ``sample_rate`` and clips of ``L = clip_seconds × sample_rate`` samples:

1. Shorter than ``L``: "repeatpad" tiles ``x`` ⌊L / len⌋ times, then zero-pads to ``L``; "repeat" tiles it
   ⌊L / len⌋ + 1 times and cuts to ``L``; "pad" zero-pads.
2. Longer than ``L``: "rand_trunc" crops ``L`` samples at an offset; "fusion" keeps the whole waveform.
3. STFT with a periodic Hann window of ``n_fft``, ``hop_length``, centred (reflect padding), power spectrum,
   then a mel filterbank from ``f_min`` to ``f_max`` Hz: HTK scale without normalisation for "fusion",
   Slaney scale and area normalisation (librosa's default) for "rand_trunc"; mel power floored at 1e-10;
   ``10 · log10``. The result is (frames, n_mels), frames = samples // hop + 1 (no frame is dropped).
4. "rand_trunc" gives one channel (1, frames, n_mels). "fusion" gives four: a short clip's mel four times;
   a long clip's whole mel shrunk to ``frames`` rows (bilinear), then three crops of ``frames`` rows whose
   start is taken from the front, middle and back third of the possible starts.

Where transformers draws offsets with numpy's global generator, this preprocessor takes the first possible
offset (the clip's start; the start of each third), or draws from a seeded torch generator with
``random_crop=True``. transformers also marks one clip of an all-short "fusion" batch as long at random; the
tower here derives "long" from the features themselves (see ``omnibind.models.clap_audio``) and does not.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from omnibind.errors import InputError
from omnibind.modalities.audio import AudioSettings
from omnibind.modalities.base import InputSpec
from omnibind.preprocess.audio import AudioSource, _checked_tensor, load_audio

TRUNCATIONS = ("rand_trunc", "fusion")
PADDINGS = ("repeatpad", "repeat", "pad")
FUSION_CHANNELS = 4  # the whole clip shrunk, then a front, a middle and a back crop
_MEL_FLOOR = 1e-10

Chooser = Callable[[range], int]
"""Picks a crop offset among the possible ones (a non-empty range)."""


def _hz_to_mel(hz: np.ndarray, scale: str) -> np.ndarray:
    """HTK mels (2595 · log10(1 + f / 700)) or Slaney mels (linear below 1 kHz, logarithmic above)."""
    if scale == "htk":
        return 2595.0 * np.log10(1.0 + hz / 700.0)
    log = 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) * (27.0 / math.log(6.4))
    return np.where(hz >= 1000.0, log, 3.0 * hz / 200.0)


def _mel_to_hz(mel: np.ndarray, scale: str) -> np.ndarray:
    """Inverse of :func:`_hz_to_mel`."""
    if scale == "htk":
        return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)
    log = 1000.0 * np.exp(math.log(6.4) / 27.0 * (mel - 15.0))
    return np.where(mel >= 15.0, log, 200.0 * mel / 3.0)


@lru_cache(maxsize=16)
def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, f_min: float, f_max: float, scale: str) -> np.ndarray:
    """Triangular filters (n_fft // 2 + 1, n_mels) in float64: "htk" unnormalised, or "slaney" with Slaney's
    area normalisation, as transformers' ``mel_filter_bank`` builds them for CLAP."""
    freqs = np.linspace(0, sample_rate // 2, n_fft // 2 + 1)
    mels = np.linspace(_hz_to_mel(np.array(float(f_min)), scale), _hz_to_mel(np.array(float(f_max)), scale), n_mels + 2)
    edges = _mel_to_hz(mels, scale)
    slopes = edges[None, :] - freqs[:, None]
    widths = np.diff(edges)
    bank = np.maximum(0.0, np.minimum(-slopes[:, :-2] / widths[:-1], slopes[:, 2:] / widths[1:]))
    if scale == "slaney":
        bank = bank * (2.0 / (edges[2:] - edges[:-2]))[None, :]
    bank.setflags(write=False)
    return bank


def log_mel_db(waveform: torch.Tensor, settings: AudioSettings, bank: torch.Tensor) -> torch.Tensor:
    """(T,) waveform → (T // hop + 1, n_mels) float32 log-mel in dB (steps 3 of the module docstring)."""
    x = waveform.to(torch.float64)
    window = torch.hann_window(settings.n_fft, periodic=True, dtype=torch.float64)
    stft = torch.stft(x, n_fft=settings.n_fft, hop_length=settings.hop_length, window=window, center=True,
                      pad_mode="reflect", return_complex=True)
    power = stft.abs().pow(2)
    mel = torch.clamp(bank.T @ power, min=_MEL_FLOOR)
    return (10.0 * mel.log10()).T.to(torch.float32)


def fit_clip(waveform: torch.Tensor, num_samples: int, padding: str) -> torch.Tensor:
    """A clip no longer than `num_samples` brought to exactly that length by `padding` (step 1)."""
    length = waveform.shape[-1]
    if length >= num_samples:
        return waveform[:num_samples]
    if padding == "repeat":
        waveform = waveform.repeat(num_samples // length + 1)[:num_samples]
    elif padding == "repeatpad":
        waveform = waveform.repeat(num_samples // length)
    return F.pad(waveform, (0, num_samples - waveform.shape[-1]))


def fusion_starts(total_frames: int, chunk_frames: int, choose: Chooser) -> list[int]:
    """Start rows of the front, middle and back crops: one chosen from each third of the possible starts (a
    third that is empty, for clips barely longer than one, falls back to start 0), as transformers does."""
    thirds = np.array_split(np.arange(total_frames - chunk_frames + 1), 3)
    starts = []
    for part in thirds:
        candidates = range(int(part[0]), int(part[-1]) + 1) if len(part) else range(0, 1)
        starts.append(choose(candidates))
    return starts


class ClapAudioPreprocessor:
    """Audio files, bytes or waveforms → CLAP input features (channels, frames, n_mels), as transformers'
    ClapFeatureExtractor computes them (module docstring)."""

    def __init__(self, settings: AudioSettings, truncation: str = "rand_trunc", padding: str = "repeatpad",
                 f_min: float = 0.0, f_max: float = 14000.0, *, random_crop: bool = False,
                 generator: torch.Generator | None = None, choose: Chooser | None = None) -> None:
        if truncation not in TRUNCATIONS:
            raise InputError("towers.audio.options.truncation", f"is {truncation!r}", f"one of {TRUNCATIONS}")
        if padding not in PADDINGS:
            raise InputError("towers.audio.options.padding", f"is {padding!r}", f"one of {PADDINGS}")
        if not 0 <= f_min < f_max <= settings.sample_rate / 2:
            raise InputError("towers.audio.options.f_min/f_max", f"are {f_min}, {f_max}",
                             f"0 <= f_min < f_max <= sample_rate / 2 = {settings.sample_rate / 2}")
        self.settings, self.truncation, self.padding = settings, truncation, padding
        self.random_crop, self.generator = random_crop, generator
        self.choose: Chooser = choose or self._choose
        scale = "htk" if truncation == "fusion" else "slaney"
        bank = mel_filterbank(settings.sample_rate, settings.n_fft, settings.n_mels, f_min, f_max, scale)
        self.bank = torch.tensor(bank, dtype=torch.float64)  # (n_freqs, n_mels)

    @property
    def channels(self) -> int:
        """Feature channels per clip: 4 for "fusion", 1 for "rand_trunc"."""
        return FUSION_CHANNELS if self.truncation == "fusion" else 1

    @property
    def num_frames(self) -> int:
        """Spectrogram rows of one clip (the STFT's frame count; none is dropped)."""
        return self.settings.num_samples // self.settings.hop_length + 1

    @property
    def input_spec(self) -> InputSpec:
        """What `one` returns: (channels, frames, n_mels) float32."""
        return InputSpec((self.channels, self.num_frames, self.settings.n_mels), torch.float32)

    def _choose(self, candidates: range) -> int:
        """The first candidate, or a random one from the generator with `random_crop`."""
        if not self.random_crop or len(candidates) == 1:
            return candidates[0]
        return candidates[int(torch.randint(len(candidates), (1,), generator=self.generator).item())]

    def waveform(self, source: AudioSource) -> torch.Tensor:
        """The whole mono waveform at the settings' rate (a long clip is cropped or fused later)."""
        if isinstance(source, np.ndarray):
            source = torch.from_numpy(source)
        if isinstance(source, torch.Tensor):
            return _checked_tensor(source)
        return load_audio(source, self.settings.sample_rate)

    def features(self, waveform: torch.Tensor) -> torch.Tensor:
        """Features of one whole mono waveform (steps 1 to 4 of the module docstring)."""
        wave = _checked_tensor(waveform).to(torch.float64)
        limit = self.settings.num_samples
        if wave.shape[-1] <= limit:
            mel = log_mel_db(fit_clip(wave, limit, self.padding), self.settings, self.bank)
            return mel.expand(self.channels, *mel.shape).contiguous()
        if self.truncation == "rand_trunc":
            start = self.choose(range(0, wave.shape[-1] - limit + 1))
            return log_mel_db(wave[start : start + limit], self.settings, self.bank)[None]
        mel = log_mel_db(wave, self.settings, self.bank)
        chunk = self.num_frames
        if mel.shape[0] == chunk:  # barely longer than a clip: the whole mel, four times
            return mel.expand(FUSION_CHANNELS, *mel.shape).contiguous()
        crops = [mel[s : s + chunk] for s in fusion_starts(mel.shape[0], chunk, self.choose)]
        shrunk = F.interpolate(mel[None, None], size=[chunk, mel.shape[1]], mode="bilinear", align_corners=False)
        return torch.stack([shrunk[0, 0], *crops])

    def one(self, source: AudioSource) -> torch.Tensor:
        """(channels, frames, n_mels) features of one clip (the Preprocessor protocol)."""
        return self.features(self.waveform(source))

    def __call__(self, source: AudioSource) -> torch.Tensor:
        return self.one(source)

    def batch(self, sources: Sequence[AudioSource]) -> torch.Tensor:
        """(B, channels, frames, n_mels) features of several clips."""
        if len(sources) == 0:
            raise InputError("sources", "empty sequence", "at least one audio source")
        return torch.stack([self.one(source) for source in sources])
