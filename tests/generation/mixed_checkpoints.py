"""A tiny mixed checkpoint, laid out as a captioning run trained beside a contrastive loss saves it: the three towers,
t' and b (an OmniBind's state dict) plus the objective's projections and decoder, with a "decoder" section whose
prompts are the text tower's SentencePiece pieces and BOS."""

from __future__ import annotations

from pathlib import Path

import torch

import omnibind.modalities as registry
from helpers import tiny_model
from omnibind import checkpoint
from omnibind.generation import DecoderConfig, Generator, GeneratorConfig
from omnibind.generation.store import SECTION, decoder_section
from omnibind.generation.text_ids import EOS_ID, PAD_ID, SentencePiecePrompts, vocab_size

TEXT = registry.TEXT.name


def mixed_parts(spiece: Path, seed: int = 0) -> tuple[torch.nn.Module, Generator]:
    """The embedding model and the generator a mixed run would hold, sharing the same media towers."""
    model = tiny_model(spiece, seed)
    text_vocab = model.config.towers[TEXT].vocab_size
    prompts = SentencePiecePrompts(model.processors[TEXT], text_vocab)
    decoder = DecoderConfig(vocab_size=vocab_size(text_vocab), width=32, depth=1, heads=2, kv_heads=1, head_dim=16,
                            mlp_dim=64)
    config = GeneratorConfig(model.config, decoder, prompts.bos_id, EOS_ID, PAD_ID)
    generator = Generator(config, model.processors, prompts)
    with torch.no_grad():
        for name, param in generator.decoder.named_parameters():
            param.normal_(0, 0.3 if "norm" not in name else 0.1)
    for m, tower in generator.towers.items():
        tower.load_state_dict(model.towers[m].state_dict())
    return model.eval(), generator.eval()


def mixed_checkpoint(folder: Path, spiece: Path, seed: int = 0) -> Path:
    """Write the mixed checkpoint into `folder` (as the trainer does: the OmniBind's state with the objective's
    `project` and `decoder` modules beside its towers)."""
    model, generator = mixed_parts(spiece, seed)
    state = dict(model.state_dict())
    state.update({k: v for k, v in generator.state_dict().items() if k.startswith(("project.", "decoder."))})
    return checkpoint.save_state(folder, model.config, state, checkpoint.asset_files(model),
                                 {SECTION: decoder_section(generator.config, generator.tokenizer)})
