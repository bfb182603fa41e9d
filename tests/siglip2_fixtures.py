"""Random-init SigLIP 2 checkpoints written by transformers itself, with a tiny Gemma-style tokenizer trained here
(nothing can be downloaded): SentencePiece BPE with byte fallback and Gemma's special-token ids, wrapped as
transformers' GemmaTokenizer the way SigLIP 2's conversion script configures it (no BOS, EOS added, right padding)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import sentencepiece as spm
import torch

CORPUS = [
    "a photo of a cat", "A Photo of Two Dogs!", "the quick brown fox jumps over the lazy dog",
    "an image of a red car parked near 42 trees", "Ünïcödé wörds, ÉCOLE and straße", "a bird on a wire at dawn",
    "children playing football in the park", "The Eiffel Tower at night; lights everywhere",
]


def gemma_tokenizer(folder: Path) -> Path:
    """A folder holding tokenizer.json + tokenizer_config.json of a tiny GemmaTokenizer (pad 0, eos 1, bos 2,
    unk 3; ids below 400 plus <mask>)."""
    import transformers

    folder.mkdir(parents=True, exist_ok=True)
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS * 10), model_prefix=str(folder / "gemma"), vocab_size=400, model_type="bpe",
        pad_id=0, eos_id=1, bos_id=2, unk_id=3, pad_piece="<pad>", eos_piece="<eos>", bos_piece="<bos>",
        unk_piece="<unk>", byte_fallback=True, split_digits=True, add_dummy_prefix=False,
        remove_extra_whitespaces=False, normalization_rule_name="identity", character_coverage=1.0,
        hard_vocab_limit=False, minloglevel=2,
    )
    source = folder / "source"
    source.mkdir(exist_ok=True)
    shutil.copy(folder / "gemma.model", source / "tokenizer.model")
    tokenizer = transformers.GemmaTokenizer.from_pretrained(source, add_bos_token=False, add_eos_token=True,
                                                            padding_side="right")
    out = folder / "hf"
    tokenizer.save_pretrained(out)
    return out


def copy_tokenizer(tokenizer: Path, folder: Path) -> None:
    """Put the tokenizer files beside a checkpoint, as SigLIP 2 folders on the hub have them."""
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tokenizer / name, folder / name)


def _build(cls: Any, config: Any) -> Any:
    """A transformers model with random weights drawn here: matrices N(0, 1/fan_in), norms' scales N(1, 0.1²),
    biases N(0, 0.02²), a non-trivial temperature and bias. transformers' own initialisation is skipped because its
    truncated normals take seconds at the real widths; the weights only need to be random and well scaled."""
    from transformers.initialization import no_init_weights

    with no_init_weights():
        model = cls(config)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.dim() >= 2:
                std, mean = param[0].numel() ** -0.5, 0.0
            else:
                std, mean = (0.1, 1.0) if "norm" in name and name.endswith("weight") else (0.02, 0.0)
            param.copy_(torch.randn(param.shape, generator=generator) * std + mean)
        model.logit_scale.fill_(2.3)
        model.logit_bias.fill_(-4.0)
    return model.eval()


def write_fixed(folder: Path, tokenizer: Path, text: dict[str, Any], vision: dict[str, Any], vocab: int) -> Any:
    """A random-init SigLIP 2 fixed-resolution checkpoint (SiglipModel, bilinear SiglipImageProcessor)."""
    import transformers

    config = transformers.SiglipConfig(
        text_config=dict(vocab_size=vocab, max_position_embeddings=64, bos_token_id=None, eos_token_id=None,
                         pad_token_id=None, **text),
        vision_config=vision)
    model = _build(transformers.SiglipModel, config)
    model.save_pretrained(folder)
    size = vision["image_size"]
    transformers.SiglipImageProcessorPil(size={"height": size, "width": size}, resample=2).save_pretrained(folder)
    copy_tokenizer(tokenizer, folder)
    return model


def write_naflex(folder: Path, tokenizer: Path, text: dict[str, Any], vision: dict[str, Any], max_patches: int,
                 vocab: int = 401) -> Any:
    """A random-init SigLIP 2 NaFlex checkpoint (Siglip2Model + Siglip2ImageProcessor)."""
    import transformers

    config = transformers.Siglip2Config(
        text_config=dict(vocab_size=vocab, max_position_embeddings=64, bos_token_id=None, eos_token_id=None, **text),
        vision_config=vision)
    model = _build(transformers.Siglip2Model, config)
    model.save_pretrained(folder)
    transformers.Siglip2ImageProcessorPil(patch_size=vision["patch_size"],
                                          max_num_patches=max_patches).save_pretrained(folder)
    copy_tokenizer(tokenizer, folder)
    return model
