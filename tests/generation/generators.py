"""Small random generators for tests: image and audio towers of omnibind's own kind, a Gemma-style decoder."""

from __future__ import annotations

import torch

from omnibind.config import model_config
from omnibind.generation import DecoderConfig, Generator, GeneratorConfig
from omnibind.processors import build_processors

TOWER = dict(width=32, depth=1, heads=2, mlp_dim=64, pool="gap")


def tiny_generator(seed: int = 0, vocab_size: int = 96) -> Generator:
    """Image (32 px, 16 patches) and audio (1.28 s, 16 patches) towers, a 2-layer decoder with multi-query
    attention; weights scaled up so that a random model does not only repeat its last token."""
    torch.manual_seed(seed)
    encoders = model_config("Ti/16", ("image", "audio"), embed_dim=32,
                            image=dict(TOWER, image_size=32, patch_size=8),
                            audio=dict(TOWER, n_mels=32, clip_seconds=1.28, patch_size=8))
    decoder = DecoderConfig(vocab_size=vocab_size, width=48, depth=2, heads=4, kv_heads=1, head_dim=12, mlp_dim=96)
    model = Generator(GeneratorConfig(encoders, decoder), build_processors(encoders))
    with torch.no_grad():
        for name, param in model.decoder.named_parameters():
            param.normal_(0, 0.3 if "norm" not in name else 0.1)
    return model.eval()
