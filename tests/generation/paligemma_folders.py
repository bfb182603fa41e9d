"""Random-init PaliGemma checkpoints written by transformers itself, with a tiny trained Gemma-style tokenizer
(SentencePiece BPE with byte fallback, wrapped as transformers' GemmaTokenizer) and PaliGemma's processor."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

CORPUS = [
    "a photo of a cat sitting on the mat", "the dog runs in the park", "what instrument is this?",
    "caption en", "a bird sings near the water", "describe the sound", "Where is the cat standing?",
    "answer en what is said?", "two people talk in a quiet room", "la voiture rouge est garée 123",
]


@dataclass
class Folder:
    """A saved PaliGemma folder and the transformers objects that wrote it."""

    path: Path
    model: Any  # PaliGemmaForConditionalGeneration, eval mode
    processor: Any  # PaliGemmaProcessor


def gemma_tokenizer(folder: Path) -> Any:
    """A GemmaTokenizer over a SentencePiece BPE model trained here, with Gemma's ids (pad 0, eos 1, bos 2)."""
    import sentencepiece as spm
    from transformers import GemmaTokenizer

    buffer = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS * 20), model_writer=buffer, vocab_size=360, model_type="bpe",
        byte_fallback=True, pad_id=0, eos_id=1, bos_id=2, unk_id=3, bos_piece="<bos>", eos_piece="<eos>",
        add_dummy_prefix=False, normalization_rule_name="identity", remove_extra_whitespaces=False,
        split_digits=True, user_defined_symbols=["\n"], minloglevel=2,
    )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tokenizer.model").write_bytes(buffer.getvalue())
    return GemmaTokenizer.from_pretrained(str(folder))


def write_paligemma(folder: Path, text: dict[str, Any], vision: dict[str, Any], vocab_size: int = 1536,
                    seed: int = 0) -> Folder:
    """Save a random PaliGemma (norm weights and biases perturbed so that every parameter matters) and its
    processor (SigLIP image processor + tokenizer with PaliGemma's added tokens) into `folder`."""
    from transformers import PaliGemmaConfig, PaliGemmaForConditionalGeneration, PaliGemmaProcessor
    from transformers.models.siglip.image_processing_pil_siglip import SiglipImageProcessorPil

    side, patch = vision["image_size"], vision["patch_size"]
    image_processor = SiglipImageProcessorPil(
        size={"height": side, "width": side}, image_seq_length=(side // patch) ** 2, resample=3,
        image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5],
    )
    processor = PaliGemmaProcessor(image_processor=image_processor, tokenizer=gemma_tokenizer(folder / "spm"))
    if len(processor.tokenizer) > vocab_size:
        raise ValueError(f"vocab_size {vocab_size} is below the tokenizer's {len(processor.tokenizer)} tokens")
    config = PaliGemmaConfig(
        text_config={**text, "vocab_size": vocab_size}, vision_config={**vision, "vision_use_head": False},
        image_token_index=processor.image_token_id, vocab_size=vocab_size, projection_dim=text["hidden_size"],
        hidden_size=text["hidden_size"],
    )
    torch.manual_seed(seed)
    model = PaliGemmaForConditionalGeneration(config).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "norm" in name or name.endswith("bias"):
                param.add_(torch.randn_like(param) * 0.1)
    model.save_pretrained(str(folder))
    processor.save_pretrained(str(folder))
    return Folder(folder, model, processor)


# initializer_range 0.2 (transformers' default is 0.02): at 0.02 the tied embeddings dominate and a random model
# only repeats its last token, which would make greedy and beam parity trivially true.
TINY_TEXT = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, head_dim=16, initializer_range=0.2)
TINY_VISION = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                   image_size=56, patch_size=14)
# PaliGemma-3B's widths (Gemma-2B decoder: 2048 wide, 8 query heads sharing 1 key/value head of 256, MLP 16384;
# SigLIP So400m/14 at 224 px: 1152 wide, 16 heads, MLP 4304, 256 patches) with one layer each.
WIDE_TEXT = dict(hidden_size=2048, intermediate_size=16_384, num_hidden_layers=1, num_attention_heads=8,
                 num_key_value_heads=1, head_dim=256, initializer_range=0.1)
WIDE_VISION = dict(hidden_size=1152, intermediate_size=4304, num_hidden_layers=1, num_attention_heads=16,
                   image_size=224, patch_size=14)

_WRITTEN: dict[str, Folder] = {}


def tiny_folder(tmp_path_factory: Any) -> Folder:
    """The tiny folder, written once per test session and shared by the test modules that read it."""
    if "tiny" not in _WRITTEN:
        _WRITTEN["tiny"] = write_paligemma(tmp_path_factory.mktemp("paligemma") / "tiny", TINY_TEXT, TINY_VISION)
    return _WRITTEN["tiny"]
