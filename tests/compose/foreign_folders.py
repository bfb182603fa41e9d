"""Tiny random-init checkpoints written by transformers' own `save_pretrained`, for the composition tests: a
SigLIP image–text folder (32-d, 32-px pictures, the tests' SentencePiece tokenizer) and a CLAP audio–text
folder (HTSAT + RoBERTa, 24-d; the CLAP parity test's tiny shape and byte-level BPE tokenizer)."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import torch

CLAP_PARITY = Path(__file__).parents[1] / "convert" / "test_clap_parity.py"
SIGLIP_DIM, CLAP_DIM = 32, 24


def siglip_folder(folder: Path, spiece: Path, seed: int = 0) -> Path:
    """A random-init transformers SiglipModel (32-d towers, 32-px pictures in 8-px patches, 16 tokens) saved
    with save_pretrained, and the SentencePiece tokenizer beside it, as a SigLIP hub repository has."""
    import transformers

    from omnibind.preprocess.text import Tokenizer

    torch.manual_seed(seed)
    tower = dict(hidden_size=SIGLIP_DIM, intermediate_size=64, num_attention_heads=2, num_hidden_layers=1)
    config = transformers.SiglipConfig(
        text_config=dict(vocab_size=Tokenizer(spiece).vocab_size, max_position_embeddings=16, **tower),
        vision_config=dict(image_size=32, patch_size=8, **tower))
    model = transformers.SiglipModel(config).eval()
    with torch.no_grad():
        model.logit_scale.fill_(2.3)
        model.logit_bias.fill_(-4.0)
    model.save_pretrained(folder)
    shutil.copy(spiece, folder / "spiece.model")
    return folder


def clap_folder(folder: Path) -> Path:
    """The CLAP parity test's tiny random-init ClapModel (rand_trunc), feature extractor and tokenizer."""
    spec = importlib.util.spec_from_file_location("compose_foreign_clap_helpers", CLAP_PARITY)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.make_hf_checkpoint(folder, module.TINY, fusion=False)
    return folder
