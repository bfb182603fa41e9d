"""CLAP's audio front end against transformers' ClapFeatureExtractor (max abs difference below 1e-4 dB on
every path: measured ≤ 7.6e-6, float32 rounding of values near 100 dB), its filterbanks, its crop logic and
its errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from omnibind.errors import InputError
from omnibind.modalities.audio import AudioSettings
from omnibind.preprocess.clap import ClapAudioPreprocessor, fusion_starts, mel_filterbank

transformers = pytest.importorskip("transformers")

TOL = 1e-4  # dB, max abs difference (float64 STFT on both sides; transformers keeps complex64 spectra)
RATE = 8000
SETTINGS = AudioSettings(sample_rate=RATE, n_fft=512, hop_length=80, n_mels=64, clip_seconds=2.0)
SAMPLES = SETTINGS.num_samples


def extractor(truncation: str, padding: str) -> transformers.ClapFeatureExtractor:
    return transformers.ClapFeatureExtractor(feature_size=64, sampling_rate=RATE, hop_length=80, max_length_s=2,
                                             fft_window_size=512, frequency_max=4000, truncation=truncation,
                                             padding=padding)


def wave(seconds: float, seed: int = 0) -> np.ndarray:
    """A tone plus noise that fades in, so loud and near-silent frames are both exercised."""
    t = np.arange(int(seconds * RATE)) / RATE
    rng = np.random.default_rng(seed)
    signal = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(t.size) * np.minimum(1, t)
    return signal.astype(np.float32)


@pytest.mark.parametrize("truncation", ["rand_trunc", "fusion"])
@pytest.mark.parametrize("padding", ["repeatpad", "repeat", "pad"])
def test_short_and_exact_clips_match_transformers(truncation: str, padding: str) -> None:
    ours = ClapAudioPreprocessor(SETTINGS, truncation, padding, 0.0, 4000.0)
    for seconds in (0.3, 0.77, 2.0):
        expected = extractor(truncation, padding)([wave(seconds)], sampling_rate=RATE, return_tensors="pt")
        got = ours.batch([wave(seconds)])
        assert got.shape == expected.input_features.shape == (1, ours.channels, 201, 64)
        assert (got - expected.input_features).abs().max() < TOL


def test_long_clip_crop_defaults_to_the_start_and_replays_transformers_draws() -> None:
    ours = ClapAudioPreprocessor(SETTINGS, "rand_trunc", "repeatpad", 0.0, 4000.0)
    long = wave(3.7, seed=1)
    start = extractor("rand_trunc", "pad")([long[:SAMPLES]], sampling_rate=RATE, return_tensors="pt")
    assert (ours.one(long) - start.input_features[0]).abs().max() < TOL
    np.random.seed(5)
    expected = extractor("rand_trunc", "repeatpad")([long], sampling_rate=RATE, return_tensors="pt")
    np.random.seed(5)
    ours.choose = lambda c: int(np.random.randint(c.start, c.stop))
    got = ours.one(long)
    assert (got - expected.input_features[0]).abs().max() < TOL
    assert (got - ours.features(torch.from_numpy(long[:SAMPLES]))).abs().max() > 1  # a different crop


def test_fusion_of_a_long_clip_matches_transformers_with_the_same_draws() -> None:
    ours = ClapAudioPreprocessor(SETTINGS, "fusion", "repeatpad", 0.0, 4000.0)
    long = wave(5.3, seed=2)
    np.random.seed(11)
    expected = extractor("fusion", "repeatpad")([long], sampling_rate=RATE, return_tensors="pt")
    np.random.seed(11)
    ours.choose = lambda c: int(np.random.choice(np.arange(c.start, c.stop)))
    got = ours.one(long)
    assert got.shape == (4, 201, 64)
    assert (got - expected.input_features[0]).abs().max() < TOL
    assert (got[1:] != got[:1]).any()  # a fused clip: crops differ from the shrunk whole


def test_fusion_starts_take_one_start_per_third_and_handle_barely_longer_clips() -> None:
    first = lambda c: c[0]  # noqa: E731
    last = lambda c: c[-1]  # noqa: E731
    assert fusion_starts(total_frames=230, chunk_frames=201, choose=first) == [0, 10, 20]
    assert fusion_starts(total_frames=230, chunk_frames=201, choose=last) == [9, 19, 29]
    assert fusion_starts(total_frames=202, chunk_frames=201, choose=last) == [0, 1, 0]  # empty third → 0
    ours = ClapAudioPreprocessor(SETTINGS, "fusion", "repeatpad", 0.0, 4000.0)
    barely = ours.one(wave(2.005))  # one hop more than a clip gives the same frame count: the mel, 4 times
    assert torch.equal(barely[1:], barely[:1].expand(3, -1, -1))


def test_random_crops_are_reproducible_with_a_seeded_generator() -> None:
    def crops(seed: int) -> torch.Tensor:
        processor = ClapAudioPreprocessor(SETTINGS, "fusion", "repeatpad", 0.0, 4000.0, random_crop=True,
                                          generator=torch.Generator().manual_seed(seed))
        return processor.batch([wave(6.0), wave(6.0)])

    first = crops(0)
    assert torch.equal(first, crops(0))
    assert not torch.equal(first[0], first[1])  # two draws from one generator differ


@pytest.mark.parametrize("scale,norm", [("htk", None), ("slaney", "slaney")])
def test_filterbanks_equal_transformers(scale: str, norm: str | None) -> None:
    from transformers.audio_utils import mel_filter_bank

    expected = mel_filter_bank(num_frequency_bins=513, num_mel_filters=64, min_frequency=0, max_frequency=14000,
                               sampling_rate=48000, norm=norm, mel_scale=scale)
    assert np.abs(mel_filterbank(48000, 1024, 64, 0.0, 14000.0, scale) - expected).max() < 1e-12


def test_files_are_decoded_and_resampled(tmp_path: Path) -> None:
    path = tmp_path / "clip.wav"
    sf.write(path, wave(1.0), RATE)
    ours = ClapAudioPreprocessor(SETTINGS, "rand_trunc", "repeatpad", 0.0, 4000.0)
    assert torch.equal(ours.one(path), ours.one(torch.from_numpy(sf.read(path, dtype="float32")[0])))


def test_bad_settings_and_inputs_are_named() -> None:
    with pytest.raises(InputError, match="truncation"):
        ClapAudioPreprocessor(SETTINGS, "center", "repeatpad")
    with pytest.raises(InputError, match="padding"):
        ClapAudioPreprocessor(SETTINGS, "fusion", "zeros")
    with pytest.raises(InputError, match="f_max"):
        ClapAudioPreprocessor(SETTINGS, "fusion", "pad", 0.0, 14000.0)  # above 4 kHz, half the rate
    ours = ClapAudioPreprocessor(SETTINGS, "fusion", "pad", 0.0, 4000.0)
    with pytest.raises(InputError, match="zero samples"):
        ours.one(torch.zeros(0))
    with pytest.raises(InputError, match="NaN"):
        ours.one(torch.tensor([0.0, float("nan")] * 400))
    with pytest.raises(InputError, match="at least one"):
        ours.batch([])
