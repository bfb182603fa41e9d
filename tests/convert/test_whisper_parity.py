"""Parity with transformers' Whisper encoder: random-init Whisper checkpoints written by save_pretrained load as
an omnibind audio tower whose encoder hidden states match transformers' within 1e-4 (fp32, max abs), and whose
front end matches WhisperFeatureExtractor within 1e-4 on the same waveform."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import omnibind
from omnibind.convert import whisper
from omnibind.errors import CheckpointError

transformers = pytest.importorskip("transformers")

TOL = 1e-4  # fp32, max abs difference

TINY = dict(d_model=64, encoder_layers=2, encoder_attention_heads=4, encoder_ffn_dim=128, num_mel_bins=80)
REAL = {
    # whisper-base and whisper-large-v3 widths, one encoder layer each
    "base": dict(d_model=512, encoder_layers=1, encoder_attention_heads=8, encoder_ffn_dim=2048, num_mel_bins=80),
    "large-v3": dict(d_model=1280, encoder_layers=1, encoder_attention_heads=20, encoder_ffn_dim=5120,
                     num_mel_bins=128),
}


def make_hf_checkpoint(folder: Path, shape: dict, cls: str = "WhisperModel") -> torch.nn.Module:
    """A random-init Whisper model (tiny decoder and vocabulary: only the encoder is read) and its feature
    extractor, saved as transformers would."""
    torch.manual_seed(0)
    config = transformers.WhisperConfig(vocab_size=64, pad_token_id=0, bos_token_id=1, eos_token_id=2,
                                        decoder_start_token_id=1, decoder_layers=1, decoder_attention_heads=4,
                                        decoder_ffn_dim=64, max_target_positions=16, **shape)
    model = getattr(transformers, cls)(config).eval()
    with torch.no_grad():  # non-trivial biases and norms, so a mismatched mapping cannot hide
        for name, param in model.named_parameters():
            if name.endswith("bias") or "layer_norm" in name:
                param.add_(torch.randn_like(param) * 0.1)
    model.save_pretrained(folder)
    transformers.WhisperFeatureExtractor(feature_size=shape["num_mel_bins"]).save_pretrained(folder)
    return model


def hf_encoder(model: torch.nn.Module) -> torch.nn.Module:
    return model.get_encoder() if hasattr(model, "get_encoder") else model.encoder


@pytest.mark.parametrize("cls", ["WhisperModel", "WhisperForConditionalGeneration"])
def test_tiny_encoder_hidden_states_match_transformers(cls: str, tmp_path: Path) -> None:
    hf = make_hf_checkpoint(tmp_path, TINY, cls)
    ours = omnibind.load(tmp_path)
    assert ours.modalities == ("audio",) and ours.config.towers["audio"].kind == "whisper"
    torch.manual_seed(1)
    mel = torch.rand(2, 80, 3000) * 3 - 1.5
    with torch.no_grad():
        expected = hf_encoder(hf)(mel).last_hidden_state
        tokens = ours.towers["audio"].tokens(mel)
        embedding = ours.encode("audio", mel)
    assert tokens.shape == expected.shape == (2, 1500, 64)
    print(f"max abs difference of hidden states (tiny, {cls}): {(tokens - expected).abs().max():.3g}")
    assert (tokens - expected).abs().max() < TOL
    assert expected.std() > 0.1  # the comparison is not between constants
    assert embedding.shape == (2, 64) and torch.allclose(embedding.norm(dim=-1), torch.ones(2))


@pytest.mark.slow
@pytest.mark.parametrize("name", list(REAL))
def test_real_width_encoder_and_front_end_match_transformers(name: str, tmp_path: Path) -> None:
    shape = REAL[name]
    hf = make_hf_checkpoint(tmp_path, shape)
    ours = omnibind.load(tmp_path)
    rng = np.random.default_rng(0)
    waves = [rng.standard_normal(16000 * 7).astype(np.float32) * 0.1,
             rng.standard_normal(16000 * 31).astype(np.float32) * 0.1]  # padded / cut to 30 s
    extractor = transformers.WhisperFeatureExtractor.from_pretrained(tmp_path)
    expected_mel = extractor(waves, sampling_rate=16000, return_tensors="pt").input_features
    mel = ours.preprocess("audio", [torch.from_numpy(w) for w in waves])
    assert mel.shape == expected_mel.shape == (2, shape["num_mel_bins"], 3000)
    assert (mel - expected_mel).abs().max() < TOL
    with torch.no_grad():  # one clip through the encoders: the batch axis adds nothing at these widths
        expected = hf.encoder(expected_mel[:1]).last_hidden_state
        tokens = ours.towers["audio"].tokens(expected_mel[:1])
    print(f"max abs differences ({name}): front end {(mel - expected_mel).abs().max():.3g}, "
          f"hidden states {(tokens - expected).abs().max():.3g}")
    assert (tokens - expected).abs().max() < TOL
    assert expected.std() > 0.1


def test_save_and_reload_keeps_the_whisper_tower_and_its_head(tmp_path: Path) -> None:
    make_hf_checkpoint(tmp_path / "hf", TINY)
    model = whisper.build(tmp_path / "hf", embed_dim=32, pool="gap", clip_seconds=10)
    assert model.config.towers["audio"].projection
    assert model.processors["audio"].input_spec.shape == (80, 1000)  # a 10 s clip: the first 500 positions
    omnibind.save(model, tmp_path / "ours")
    again = omnibind.load(tmp_path / "ours")
    waves = [torch.randn(16000 * 4) * 0.1, torch.randn(16000 * 12) * 0.1]
    with torch.no_grad():
        first, second = model.encode("audio", waves), again.encode("audio", waves)
    assert first.shape == (2, 32)
    assert torch.equal(first, second)
    with pytest.raises(CheckpointError, match="clip_seconds"):
        whisper.build(tmp_path / "hf", clip_seconds=31)


def test_too_long_input_and_mismatched_weights_are_named(tmp_path: Path) -> None:
    make_hf_checkpoint(tmp_path, TINY)
    model = omnibind.load(tmp_path)
    with pytest.raises(omnibind.errors.InputError, match="at most 3000"):
        model.encode("audio", torch.zeros(1, 80, 3002))
    config = (tmp_path / "config.json").read_text().replace('"encoder_ffn_dim": 128', '"encoder_ffn_dim": 96')
    (tmp_path / "config.json").write_text(config)
    with pytest.raises(CheckpointError, match="wrong shape"):
        omnibind.load(tmp_path)


def test_tower_kinds_leave_default_configs_unchanged_and_name_unknown_kinds() -> None:
    from omnibind.config import AudioConfig, model_config

    towers = model_config("Ti/16", ("image", "text", "audio")).to_dict()["towers"]
    assert all("kind" not in tower and "options" not in tower for tower in towers.values())  # older layout kept
    with pytest.raises(omnibind.errors.InputError, match=r"towers\.audio\.kind"):
        AudioConfig(kind="wav2vec")
