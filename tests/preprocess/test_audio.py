"""Audio preprocessing: Whisper-equal log-mel features, decoding invariances, clip length and bad input."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from omnibind.errors import InputError
from omnibind.preprocess.audio import (
    AudioPreprocessor,
    AudioSettings,
    fit_length,
    load_audio,
    log_mel_spectrogram,
    mel_filterbank,
)

SR = 16000
# float32 STFT against transformers' float64 numpy STFT: measured max |diff| 4.4e-5 (mean 2.5e-7), in the
# lowest-energy mel bins where float32 rounding of the FFT shows; 1e-4 leaves a 2x margin.
WHISPER_ATOL = 1e-4
# A float64 waveform keeps the torch path in float64: measured max |diff| 8e-8 against a float64 reference.
FLOAT64_ATOL = 1e-6


def _tone(sample_rate: int, seconds: float, amplitude: float = 1.0) -> np.ndarray:
    """Three partials (440, 1250, 3300 Hz): a deterministic signal with structure across the mel range."""
    t = np.arange(round(sample_rate * seconds)) / sample_rate
    wave = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 1250 * t + 0.3)
    wave += 0.1 * np.sin(2 * np.pi * 3300 * t)
    return (amplitude * wave).astype(np.float32)


def _noisy_tone(seconds: float, seed: int = 0) -> np.ndarray:
    """A tone plus noise that fades in, so both loud and near-silent frames are exercised."""
    rng = np.random.default_rng(seed)
    n = round(SR * seconds)
    noise = 0.1 * rng.standard_normal(n) * np.linspace(0.0, 1.0, n)
    return (_tone(SR, seconds) + noise).astype(np.float32)


# ------------------------------------------------------------------------------- independent numpy reference


def _slaney_hz_to_mel(hz: np.ndarray) -> np.ndarray:
    hz = np.asarray(hz, dtype=np.float64)
    return np.where(
        hz < 1000.0, hz / (200.0 / 3.0), 15.0 + 27.0 * np.log(np.maximum(hz, 1.0) / 1000.0) / np.log(6.4)
    )


def _slaney_mel_to_hz(mel: np.ndarray) -> np.ndarray:
    return np.where(mel < 15.0, mel * (200.0 / 3.0), 1000.0 * 6.4 ** ((mel - 15.0) / 27.0))


def _reference_filterbank(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    """Slaney filterbank written loop by loop, as in Slaney's Auditory Toolbox."""
    freqs = np.arange(n_fft // 2 + 1) * sample_rate / n_fft
    edges = _slaney_mel_to_hz(np.linspace(0.0, _slaney_hz_to_mel(sample_rate / 2), n_mels + 2))
    bank = np.zeros((len(freqs), n_mels))
    for m in range(n_mels):
        lo, mid, hi = edges[m], edges[m + 1], edges[m + 2]
        for k, f in enumerate(freqs):
            if lo < f <= mid:
                bank[k, m] = (f - lo) / (mid - lo)
            elif mid < f < hi:
                bank[k, m] = (hi - f) / (hi - mid)
        bank[:, m] *= 2.0 / (hi - lo)
    return bank


def _reference_log_mel(wave: np.ndarray, n_mels: int, n_fft: int = 400, hop: int = 160) -> np.ndarray:
    """Plain-numpy float64 Whisper log-mel: explicit framing, np.fft.rfft, the loop-built filterbank above."""
    x = np.pad(wave.astype(np.float64), n_fft // 2, mode="reflect")
    n_frames = 1 + (len(x) - n_fft) // hop
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)  # periodic Hann
    frames = np.stack([x[i * hop : i * hop + n_fft] * window for i in range(n_frames)])
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2  # (frames, freqs)
    mel = _reference_filterbank(SR, n_fft, n_mels).T @ power.T  # (n_mels, frames)
    log_mel = np.log10(np.maximum(mel, 1e-10))[:, :-1]
    log_mel = np.maximum(log_mel, log_mel.max() - 8.0)
    return (log_mel + 4.0) / 4.0


# ---------------------------------------------------------------------------------------- 1. feature values


@pytest.mark.parametrize("n_mels", [80, 128])
@pytest.mark.parametrize("seconds", [1.0, 2.3456])  # 2.3456 s: a length that is not a multiple of the hop
def test_features_match_whisper_feature_extractor(n_mels: int, seconds: float) -> None:
    transformers = pytest.importorskip("transformers")
    extractor = transformers.WhisperFeatureExtractor(
        feature_size=n_mels, sampling_rate=SR, hop_length=160, n_fft=400
    )
    wave = _noisy_tone(seconds)
    ours = log_mel_spectrogram(torch.from_numpy(wave), AudioSettings(n_mels=n_mels)).numpy()

    # The numpy path on the un-padded waveform: the extractor's __call__ would first pad to 30 s.
    reference = extractor._np_extract_fbank_features(wave[None], "cpu")[0]
    assert ours.shape == reference.shape == (n_mels, len(wave) // 160)
    np.testing.assert_allclose(ours, reference, rtol=0, atol=WHISPER_ATOL)

    # The public call, told not to pad, takes transformers' torch path; same tolerance.
    public = extractor(wave, sampling_rate=SR, padding="do_not_pad", return_tensors="np")["input_features"][0]
    np.testing.assert_allclose(ours, public, rtol=0, atol=WHISPER_ATOL)


@pytest.mark.parametrize("n_mels", [80, 128])
def test_features_match_plain_numpy_reference(n_mels: int) -> None:
    wave = _noisy_tone(1.5, seed=1)
    settings = AudioSettings(n_mels=n_mels)
    reference = _reference_log_mel(wave, n_mels)
    ours32 = log_mel_spectrogram(torch.from_numpy(wave), settings)
    ours64 = log_mel_spectrogram(torch.from_numpy(wave.astype(np.float64)), settings)
    assert ours32.dtype == torch.float32 and ours64.dtype == torch.float64
    np.testing.assert_allclose(ours32.numpy(), reference, rtol=0, atol=WHISPER_ATOL)
    np.testing.assert_allclose(ours64.numpy(), reference, rtol=0, atol=FLOAT64_ATOL)


def test_batched_features_normalise_each_example_on_its_own() -> None:
    settings = AudioSettings()
    loud, quiet = _noisy_tone(1.0, seed=2), _noisy_tone(1.0, seed=3) * 1e-3
    batch = log_mel_spectrogram(torch.from_numpy(np.stack([loud, quiet])), settings)
    assert batch.shape == (2, settings.n_mels, SR // 160)
    for row, wave in zip(batch, (loud, quiet), strict=True):
        torch.testing.assert_close(
            row, log_mel_spectrogram(torch.from_numpy(wave), settings), rtol=0, atol=1e-6
        )
    # The 80 dB clamp is per example: each row spans at most 8 / 4 = 2 below its own maximum, so the quiet
    # row (60 dB down, i.e. 6 / 4 lower) keeps its detail instead of being flattened by the loud row's floor.
    for row in batch:
        assert row.min().item() >= row.max().item() - 2.0 - 1e-6
    assert batch[0].max().item() - batch[1].max().item() == pytest.approx(1.5, abs=0.01)


# ---------------------------------------------------------------------------------------- 2. filterbank


@pytest.mark.parametrize("n_mels", [80, 128])
def test_mel_filterbank_properties(n_mels: int) -> None:
    settings = AudioSettings(n_mels=n_mels)
    bank = mel_filterbank(settings)
    assert bank.shape == (settings.n_fft // 2 + 1, n_mels)
    assert bank.dtype == torch.float32
    assert (bank >= 0).all()
    assert (bank.sum(dim=0) > 0).all(), "every filter must cover at least one FFT bin"
    # Low filters are narrower than the 40 Hz bin spacing, so neighbours can share a peak bin:
    # peaks never go down, and across the bank they climb from the bottom to the top of the spectrum.
    peaks = bank.argmax(dim=0)
    assert (peaks.diff() >= 0).all()
    assert peaks[0] <= 1 and peaks[-1] >= 0.9 * (bank.shape[0] - 1)
    # Slaney area normalisation: wide (high) filters integrate to ~1 over Hz (5 %: sampling error).
    area = bank.sum(dim=0).double() * settings.sample_rate / settings.n_fft
    torch.testing.assert_close(
        area[-n_mels // 4 :], torch.ones(n_mels // 4, dtype=torch.float64), atol=0.05, rtol=0
    )
    np.testing.assert_allclose(bank.numpy(), _reference_filterbank(SR, 400, n_mels), rtol=1e-5, atol=1e-9)


def test_mel_filterbank_matches_transformers() -> None:
    audio_utils = pytest.importorskip("transformers.audio_utils")
    expected = audio_utils.mel_filter_bank(201, 128, 0.0, 8000.0, SR, norm="slaney", mel_scale="slaney")
    np.testing.assert_allclose(mel_filterbank(AudioSettings()).numpy(), expected, rtol=1e-5, atol=1e-9)


# ---------------------------------------------------------------------------------------- 3. invariances


def test_resampled_44k_tone_gives_the_same_features_as_16k(tmp_path: Path) -> None:
    seconds = 2.0
    settings = AudioSettings(clip_seconds=seconds)
    sf.write(tmp_path / "tone44.wav", _tone(44100, seconds), 44100, subtype="FLOAT")
    sf.write(tmp_path / "tone16.wav", _tone(SR, seconds), SR, subtype="FLOAT")
    resampled = load_audio(tmp_path / "tone44.wav", SR)
    native = load_audio(tmp_path / "tone16.wav", SR)
    assert resampled.shape == native.shape == (round(SR * seconds),)
    features = AudioPreprocessor(settings)
    diff = (features(resampled) - features(native)).abs()
    # Measured: mean 5.8e-5; interior max 8.3e-5. The first/last frames differ by up to 0.09 because the
    # resampler's filter sees the clip edges differently, so the max is checked away from them.
    assert diff.mean().item() < 5e-4
    assert diff[:, 3:-3].max().item() < 1e-3


def test_stereo_with_identical_channels_equals_mono(tmp_path: Path) -> None:
    mono = _tone(SR, 0.5)
    sf.write(tmp_path / "mono.wav", mono, SR, subtype="FLOAT")
    sf.write(tmp_path / "stereo.wav", np.stack([mono, mono], axis=1), SR, subtype="FLOAT")
    assert torch.equal(load_audio(tmp_path / "stereo.wav", SR), load_audio(tmp_path / "mono.wav", SR))


def test_stereo_with_different_channels_is_their_mean(tmp_path: Path) -> None:
    left, right = _tone(SR, 0.5), _noisy_tone(0.5, seed=4)
    sf.write(tmp_path / "stereo.wav", np.stack([left, right], axis=1), SR, subtype="FLOAT")
    expected = torch.from_numpy((left + right) / np.float32(2))
    torch.testing.assert_close(load_audio(tmp_path / "stereo.wav", SR), expected, rtol=0, atol=1e-7)


def test_bytes_decode_like_the_file(tmp_path: Path) -> None:
    path = tmp_path / "tone.flac"
    sf.write(path, _tone(22050, 0.5), 22050)
    assert torch.equal(load_audio(path.read_bytes(), SR), load_audio(path, SR))
    assert torch.equal(load_audio(str(path), SR), load_audio(path, SR))


# ---------------------------------------------------------------------------------------- 4. formats


def _dominant_frequency(wave: torch.Tensor, sample_rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(wave.numpy()))
    return float(np.argmax(spectrum) * sample_rate / len(wave))


@pytest.mark.parametrize(
    ("fmt", "suffix", "lossless"),
    [("WAV", "wav", True), ("FLAC", "flac", True), ("OGG", "ogg", False), ("MP3", "mp3", False)],
)
def test_formats_written_by_soundfile_load(tmp_path: Path, fmt: str, suffix: str, lossless: bool) -> None:
    wave = _tone(SR, 1.0)
    path = tmp_path / f"tone.{suffix}"
    try:
        sf.write(path, wave, SR, format=fmt)
    except (sf.SoundFileError, TypeError, ValueError) as err:
        pytest.skip(f"this libsndfile ({sf.__libsndfile_version__}) cannot write {fmt}: {err}")
    loaded = load_audio(path, SR)
    assert loaded.dtype == torch.float32 and loaded.dim() == 1
    if lossless:  # 16-bit PCM: within one quantisation step
        torch.testing.assert_close(loaded, torch.from_numpy(wave), rtol=0, atol=1.0 / 32768)
    else:  # lossy codecs may add encoder delay/padding; the content must still be the tone
        assert abs(len(loaded) - len(wave)) <= 0.1 * len(wave)
        assert _dominant_frequency(loaded, SR) == pytest.approx(440.0, abs=2.0)
    assert AudioPreprocessor(AudioSettings(clip_seconds=1.0))(path).shape == (128, 100)


# ---------------------------------------------------------------------------------------- 5. clip length


def test_fit_length_crops_from_the_start_and_pads_with_zeros() -> None:
    wave = torch.arange(10, dtype=torch.float32)
    torch.testing.assert_close(fit_length(wave, 4), wave[:4])
    torch.testing.assert_close(fit_length(wave, 13), torch.cat([wave, torch.zeros(3)]))
    assert torch.equal(fit_length(wave, 10), wave)
    assert fit_length(torch.zeros(2, 10), 6).shape == (2, 6)


def test_fit_length_random_crop_is_a_seeded_contiguous_window() -> None:
    wave = torch.arange(1000, dtype=torch.float32)

    def crop(seed: int) -> torch.Tensor:
        return fit_length(wave, 100, random_crop=True, generator=torch.Generator().manual_seed(seed))

    first = crop(0)
    assert torch.equal(first, crop(0)), "same seed, same crop"
    start = int(first[0])
    assert torch.equal(first, torch.arange(start, start + 100, dtype=torch.float32))
    assert len({int(crop(seed)[0]) for seed in range(10)}) > 1, "different seeds move the window"
    short = torch.ones(50)
    torch.testing.assert_close(fit_length(short, 100, random_crop=True), torch.cat([short, torch.zeros(50)]))


@pytest.mark.parametrize("seconds", [0.3, 10.0, 12.5])
def test_preprocessor_output_shape_for_short_exact_and_long_clips(tmp_path: Path, seconds: float) -> None:
    settings = AudioSettings()
    assert (settings.num_samples, settings.num_frames) == (160000, 1000)
    path = tmp_path / "clip.wav"
    sf.write(path, _tone(SR, seconds), SR)
    preprocess = AudioPreprocessor(settings)
    assert preprocess(path).shape == (settings.n_mels, settings.num_frames)
    assert preprocess(torch.from_numpy(_tone(SR, seconds))).shape == (settings.n_mels, settings.num_frames)


def test_frame_count_is_num_frames_for_odd_clip_lengths() -> None:
    settings = AudioSettings(n_mels=80, clip_seconds=1.23456)
    assert settings.num_samples == round(1.23456 * SR)
    assert AudioPreprocessor(settings)(torch.zeros(5)).shape == (80, settings.num_frames)


def test_batch_stacks_single_clips(tmp_path: Path) -> None:
    settings = AudioSettings(clip_seconds=1.0)
    path = tmp_path / "a.wav"
    sf.write(path, _tone(SR, 0.7), SR, subtype="FLOAT")
    sources = [path, path.read_bytes(), torch.from_numpy(_noisy_tone(1.4))]
    preprocess = AudioPreprocessor(settings)
    batch = preprocess.batch(sources)
    assert batch.shape == (3, settings.n_mels, settings.num_frames)
    for row, source in zip(batch, sources, strict=True):
        torch.testing.assert_close(row, preprocess(source), rtol=0, atol=1e-6)


# ---------------------------------------------------------------------------------------- 6. bad input


def _wav_bytes(tmp_path: Path) -> bytes:
    sf.write(tmp_path / "good.wav", _tone(SR, 1.0), SR)
    return (tmp_path / "good.wav").read_bytes()


def _make_bad(tmp_path: Path, kind: str) -> Path:
    """Write one kind of broken audio file and return its path."""
    if kind == "missing":
        return tmp_path / "missing.wav"
    path = (
        tmp_path
        / {
            "empty": "empty.wav",
            "garbage": "garbage.wav",
            "text_as_mp3": "notes.mp3",
            "zero_length": "silence.wav",
            "header_only": "header.wav",
            "half_flac": "half.flac",
            "nan": "nan.wav",
        }[kind]
    )
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "garbage":
        path.write_bytes(np.random.default_rng(0).bytes(4096))
    elif kind == "text_as_mp3":
        path.write_text("this is a text file, not audio\n" * 40)
    elif kind == "zero_length":
        sf.write(path, np.zeros(0, dtype=np.float32), SR)
    elif kind == "header_only":
        path.write_bytes(_wav_bytes(tmp_path)[:30])  # cut inside the RIFF header: no data chunk
    elif kind == "half_flac":
        sf.write(tmp_path / "full.flac", _tone(SR, 1.0), SR)
        data = (tmp_path / "full.flac").read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "nan":
        wave = _tone(SR, 0.1)
        wave[7] = np.nan
        sf.write(path, wave, SR, subtype="FLOAT")
    return path


@pytest.mark.parametrize(
    "kind",
    ["missing", "empty", "garbage", "text_as_mp3", "zero_length", "header_only", "half_flac", "nan"],
)
def test_bad_files_raise_input_error_naming_the_file(tmp_path: Path, kind: str) -> None:
    path = _make_bad(tmp_path, kind)
    with pytest.raises(InputError) as caught:
        load_audio(path, SR)
    assert path.name in str(caught.value)
    assert "expected" in str(caught.value)
    with pytest.raises(InputError, match=path.name):
        AudioPreprocessor()(path)


def test_undecodable_file_message_lists_the_expected_formats(tmp_path: Path) -> None:
    path = _make_bad(tmp_path, "text_as_mp3")
    with pytest.raises(InputError, match="WAV, FLAC, OGG"):
        load_audio(path, SR)


@pytest.mark.parametrize("data", [b"", b"RIFF not really audio", bytes(range(256)) * 8])
def test_bad_bytes_raise_input_error(data: bytes) -> None:
    with pytest.raises(InputError, match="<bytes>"):
        load_audio(data, SR)


def test_wav_cut_in_half_loads_the_samples_present_or_fails_cleanly(tmp_path: Path) -> None:
    full = _wav_bytes(tmp_path)
    path = tmp_path / "truncated.wav"
    path.write_bytes(full[: len(full) // 2])  # header still claims the full second of audio
    original = load_audio(tmp_path / "good.wav", SR)
    try:
        loaded = load_audio(path, SR)
    except InputError as err:
        assert path.name in str(err)
        return
    # libsndfile 1.2 reads what is there: the first ~half of the samples, unchanged.
    assert 0 < len(loaded) < len(original)
    assert torch.equal(loaded, original[: len(loaded)])


def test_directory_and_bad_tensors_raise_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a regular file"):
        load_audio(tmp_path, SR)
    preprocess = AudioPreprocessor()
    for bad in (
        torch.zeros(2, 100),
        torch.zeros(0),
        torch.tensor([0.0, math.nan]),
        torch.zeros(10, dtype=torch.int16),
    ):
        with pytest.raises(InputError):
            preprocess(bad)
    with pytest.raises(InputError, match="samples"):
        log_mel_spectrogram(torch.zeros(100), AudioSettings())
    with pytest.raises(InputError):
        AudioSettings(sample_rate=0)
