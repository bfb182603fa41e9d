"""The generator's prefix is [image tokens][audio tokens][prompt tokens], for any subset of the media, per
example; `generate` reads prompts and media and writes text."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer, normalizers
from tokenizers.models import BPE

from generation.generators import tiny_generator
from omnibind.errors import InputError
from omnibind.generation import PromptTokenizer

IMAGE_TOKENS, AUDIO_TOKENS = 16, 64  # 32 px / 8 px patches; 32 mels × 128 frames in 8 × 8 patches


def test_prefix_is_image_then_audio_then_prompt() -> None:
    model = tiny_generator()
    image, audio = torch.rand(3, 32, 32), torch.randn(32, 128)
    prompt = [2, 7, 8, 9]
    prefix = model.prefix([prompt], {"audio": [audio], "image": [image]})  # dict order does not matter
    with torch.no_grad():
        expected = torch.cat([
            model.project["image"](model.towers["image"].tokens(image[None]))[0],
            model.project["audio"](model.towers["audio"].tokens(audio[None]))[0],
            model.decoder.embed_tokens(torch.tensor([prompt]))[0],
        ])
    assert prefix.embeds.shape == (1, IMAGE_TOKENS + AUDIO_TOKENS + 4, 48)
    assert torch.allclose(prefix.embeds[0], expected, atol=1e-6)
    assert prefix.positions[0].tolist() == list(range(1, IMAGE_TOKENS + AUDIO_TOKENS + 5))


def test_any_subset_of_media_per_example() -> None:
    model = tiny_generator()
    image, audio = torch.rand(3, 32, 32), torch.randn(32, 128)
    prefix = model.prefix([[2, 5], [2, 5], [2, 5], [2, 5]],
                          {"image": [image, None, image, None], "audio": [audio, audio, None, None]})
    lengths = prefix.valid.sum(1).tolist()
    assert lengths == [IMAGE_TOKENS + AUDIO_TOKENS + 2, AUDIO_TOKENS + 2, IMAGE_TOKENS + 2, 2]
    assert not bool(prefix.valid[3, :-2].any())  # left padding
    out = model.generate_ids([[2, 5]] * 4, {"image": [image, None, image, None], "audio": [audio, audio, None, None]})
    assert len(out) == 4 and all(len(row) > 0 for row in out)


def test_media_errors_name_the_modality() -> None:
    model = tiny_generator()
    with pytest.raises(InputError, match="depth: this generator has no such tower"):
        model.prefix([[2]], {"depth": [torch.zeros(1)]})
    with pytest.raises(InputError, match="image: 2 items for 1 prompts"):
        model.prefix([[2]], {"image": [torch.rand(3, 32, 32)] * 2})
    with pytest.raises(InputError, match="prompt ids"):
        model.prefix([[2, 500]])
    with pytest.raises(InputError, match="tokenizer"):
        model.generate("caption en")


def char_tokenizer(folder: Path) -> Path:
    """A character-level tokenizers-library file with Gemma's special ids and its space normaliser."""
    chars = sorted(set("abcdefghijklmnopqrstuvwxyz?\n▁"))
    vocab = {"<pad>": 0, "<eos>": 1, "<bos>": 2, "<unk>": 3} | {c: i + 4 for i, c in enumerate(chars)}
    tokenizer = Tokenizer(BPE(vocab, [], unk_token="<unk>"))
    tokenizer.normalizer = normalizers.Replace(" ", "▁")
    tokenizer.add_special_tokens(["<pad>", "<eos>", "<bos>", "<unk>"])
    path = folder / "tokenizer.json"
    tokenizer.save(str(path))
    return path


def test_generate_reads_raw_media_and_writes_text(tmp_path: Path, media_files: dict[str, Path]) -> None:
    model = tiny_generator()
    model.tokenizer = PromptTokenizer(char_tokenizer(tmp_path))
    vocab = model.tokenizer.tokenizer.get_vocab()
    assert model.tokenizer.prompt_ids("ab c") == [2, vocab["a"], vocab["b"], vocab["▁"], vocab["c"], vocab["\n"]]
    texts = model.generate(["what is this?", "caption"], image=media_files["photo"],
                           audio=[media_files["tone"], None], max_new_tokens=5)
    assert len(texts) == 2 and all(isinstance(t, str) for t in texts)
    beams = model.generate("caption", image=media_files["photo"], beams=3, max_new_tokens=5)
    sampled = model.generate("caption", image=media_files["photo"], sample=True, seed=0, max_new_tokens=5)
    assert sampled == model.generate("caption", image=media_files["photo"], sample=True, seed=0, max_new_tokens=5)
    assert len(beams) == 1
