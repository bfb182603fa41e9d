"""What `omnibind info` says about a generator beyond its towers: the decoder's shape, its parameters, the
projected media and how prompts are read."""

from __future__ import annotations

from omnibind.generation.model import Generator
from omnibind.generation.text_ids import SentencePiecePrompts
from omnibind.generation.tokenizer import PromptTokenizer


def describe(model: Generator) -> str:
    """One line: decoder shape and size, prefix media, prompt tokenizer and special ids."""
    d = model.config.decoder
    params = sum(p.numel() for p in model.decoder.parameters()) + sum(p.numel() for p in model.project.parameters())
    if isinstance(model.tokenizer, PromptTokenizer):
        tokenizer = f"tokenizers ({model.tokenizer.path.name}, {len(model.tokenizer)} tokens)"
    elif isinstance(model.tokenizer, SentencePiecePrompts):
        tokenizer = f"the text tower's SentencePiece + BOS ({len(model.tokenizer)} ids)"
    else:
        tokenizer = "none (ids only)"
    return (f"decoder: width {d.width}, depth {d.depth}, heads {d.heads} (kv {d.kv_heads}) × {d.head_dim}, "
            f"mlp {d.mlp_dim}, vocab {d.vocab_size}; {params / 1e6:.1f}M with the projections of "
            f"{', '.join(model.modalities) or 'no media'}; prompts: {tokenizer}; "
            f"bos {model.config.bos_id}, eos {model.config.eos_id}, pad {model.config.pad_id}")
