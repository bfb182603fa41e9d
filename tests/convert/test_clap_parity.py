"""Parity with transformers' CLAP: random-init ClapModels written by save_pretrained (with a byte-level BPE
tokenizer trained here and saved as transformers' RobertaTokenizer) load as OmniBind models whose features
match ClapFeatureExtractor within 1e-4 dB, whose token ids are identical to transformers' and whose audio
and text embeddings and logits match transformers' within 1e-4 (fp32, max abs)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import omnibind
from omnibind.errors import CheckpointError
from omnibind.models.clap_audio import Encoder

transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

TOL = 1e-4  # fp32 embeddings, max abs difference; features in dB, max abs difference

CORPUS = [
    "a dog barks twice in the distance", "rain falling on a tin roof", "a slow piano melody",
    "church bells ringing at noon", "a crowd cheering after a goal", "wind through tall grass",
    "an old car engine starting", "birds singing at dawn, then silence", "Glass breaks; someone gasps!",
]
TEXTS = ["a dog barks", "rain on the roof of an old car, then bells ringing at noon " * 3, "Ünïcode wörds — ok?"]

TINY = dict(
    text=dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
              max_position_embeddings=100),
    audio=dict(num_mel_bins=64, spec_size=128, window_size=4, depths=[1, 1], num_attention_heads=[2, 4],
               patch_embeds_hidden_size=16, hidden_size=32),
    projection_dim=24,
    features=dict(feature_size=64, sampling_rate=8000, hop_length=80, max_length_s=2, fft_window_size=512,
                  frequency_max=4000),
)
REAL = dict(  # laion/clap-htsat-fused's widths, one layer per text tower and Swin stage
    text=dict(hidden_size=768, num_hidden_layers=1, num_attention_heads=12, intermediate_size=3072),
    audio=dict(depths=[1, 1, 1, 1]),
    projection_dim=512,
    features=dict(),
)


def make_tokenizer(folder: Path) -> transformers.PreTrainedTokenizerBase:
    """A tiny byte-level BPE trained with `tokenizers`, saved as transformers' RoBERTa tokenizer."""
    bpe = tokenizers.ByteLevelBPETokenizer()
    bpe.train_from_iterator(CORPUS, vocab_size=400, min_frequency=1,
                            special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    folder.mkdir(parents=True, exist_ok=True)
    bpe.save_model(str(folder))
    tokenizer = transformers.RobertaTokenizer(vocab=str(folder / "vocab.json"), merges=str(folder / "merges.txt"))
    tokenizer.save_pretrained(folder)
    return tokenizer


def make_hf_checkpoint(folder: Path, shape: dict, fusion: bool) -> tuple:
    """A random-init ClapModel (non-trivial biases, norms and BatchNorm statistics), its feature extractor and
    tokenizer, saved as transformers would."""
    tokenizer = make_tokenizer(folder)
    torch.manual_seed(0)
    config = transformers.ClapConfig(
        text_config=dict(vocab_size=len(tokenizer), **shape["text"]),
        audio_config=dict(enable_fusion=fusion, fusion_type="aff_2d" if fusion else None, **shape["audio"]),
        projection_dim=shape["projection_dim"],
    )
    model = transformers.ClapModel(config).eval()
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if tensor.is_floating_point() and ("bias" in name or "norm" in name.lower() or "running" in name):
                tensor.add_(torch.rand_like(tensor) * 0.2)
        model.logit_scale_a.fill_(2.0)
    model.save_pretrained(folder)
    extractor = transformers.ClapFeatureExtractor(truncation="fusion" if fusion else "rand_trunc",
                                                  **shape["features"])
    extractor.save_pretrained(folder)
    return model, extractor, tokenizer


def numpy_chooser(kind: str):
    """Replays the draws transformers makes from numpy's global generator (seed it first)."""
    if kind == "rand_trunc":
        return lambda c: int(np.random.randint(c.start, c.stop))
    return lambda c: int(np.random.choice(np.arange(c.start, c.stop)))


def compare(folder: Path, shape: dict, fusion: bool, seconds: list[float]) -> dict[str, float]:
    """Max abs differences of features, embeddings and logits between omnibind and transformers."""
    hf, extractor, tokenizer = make_hf_checkpoint(folder, shape, fusion)
    ours = omnibind.load(folder)
    assert ours.config.towers["audio"].kind == "htsat" and ours.config.towers["text"].kind == "roberta"
    rate = extractor.sampling_rate
    rng = np.random.default_rng(0)
    waves = [rng.standard_normal(int(s * rate)).astype(np.float32) * 0.1 for s in seconds]
    truncation = "fusion" if fusion else "rand_trunc"
    np.random.seed(3)
    expected = extractor(waves, sampling_rate=rate, return_tensors="pt")
    np.random.seed(3)
    processor = ours.processors["audio"]
    processor.choose = numpy_chooser(truncation)
    features = processor.batch(waves)
    assert features.shape == expected.input_features.shape
    if fusion:
        assert Encoder.longer(features).tolist() == expected.is_longer[:, 0].tolist()

    ids = ours.preprocess("text", TEXTS)
    hf_ids = tokenizer(TEXTS, padding="max_length", truncation=True, max_length=77, return_tensors="pt")
    assert torch.equal(ids, hf_ids.input_ids)
    unpadded = tokenizer(TEXTS, padding=True, return_tensors="pt")  # the embedding must not depend on padding
    with torch.no_grad():
        out = hf(input_ids=unpadded.input_ids, attention_mask=unpadded.attention_mask,
                 input_features=expected.input_features, is_longer=expected.is_longer)
        audio, text = ours.encode("audio", features), ours.encode("text", ids)
        logits = ours.logits(audio, text)
    assert logits.std() > 0.01  # the comparison is not between constants
    return {
        "features": float((features - expected.input_features).abs().max()),
        "audio": float((audio - out.audio_embeds).abs().max()),
        "text": float((text - out.text_embeds).abs().max()),
        "logits": float((logits - out.logits_per_audio).abs().max()),
    }


@pytest.mark.parametrize("fusion", [False, True], ids=["rand_trunc", "fusion"])
def test_tiny_clap_matches_transformers(fusion: bool, tmp_path: Path) -> None:
    # a short clip (repeat-padded), one barely longer than a clip and one long clip (cropped or fused)
    diffs = compare(tmp_path, TINY, fusion, [0.7, 2.005, 3.3])
    print(f"max abs differences ({'fusion' if fusion else 'rand_trunc'}): {diffs}")
    assert max(diffs.values()) < TOL, diffs


@pytest.mark.slow
def test_real_width_fused_clap_matches_transformers(tmp_path: Path) -> None:
    diffs = compare(tmp_path, REAL, True, [4.0, 12.5])
    print(f"max abs differences (real widths, fusion): {diffs}")
    assert max(diffs.values()) < TOL, diffs


def test_save_reload_keeps_towers_tokenizer_and_embeddings(tmp_path: Path) -> None:
    make_hf_checkpoint(tmp_path / "hf", TINY, fusion=True)
    model = omnibind.load(tmp_path / "hf")
    omnibind.save(model, tmp_path / "ours")
    assert (tmp_path / "ours" / "tokenizer.json").is_file()
    again = omnibind.load(tmp_path / "ours")
    wave = torch.from_numpy(np.random.default_rng(1).standard_normal(30000).astype(np.float32) * 0.1)
    with torch.no_grad():
        for modality, inputs in (("audio", [wave]), ("text", TEXTS)):
            assert torch.equal(model.encode(modality, inputs), again.encode(modality, inputs))
    result = omnibind.zero_shot(again, [wave], ["a dog", "rain"], modality="audio")
    assert result.logits.shape == (1, 2) and torch.isfinite(result.logits).all()


def test_missing_tokenizer_and_inconsistent_truncation_are_named(tmp_path: Path) -> None:
    make_hf_checkpoint(tmp_path, TINY, fusion=False)
    config = (tmp_path / "preprocessor_config.json").read_text()
    (tmp_path / "preprocessor_config.json").write_text(config.replace('"rand_trunc"', '"fusion"'))
    with pytest.raises(CheckpointError, match="enable_fusion"):
        omnibind.load(tmp_path)
    (tmp_path / "tokenizer.json").unlink()
    with pytest.raises(CheckpointError, match=r"tokenizer\.json"):
        omnibind.load(tmp_path)
