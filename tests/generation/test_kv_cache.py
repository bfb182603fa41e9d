"""Decoding through the KV cache gives the logits of recomputing the whole sequence without it, and a batch of
prefixes of different lengths (left-padded) gives each example's own results."""

from __future__ import annotations

import torch

from generation.generators import tiny_generator
from omnibind.generation import Decoding
from omnibind.generation.decoding import decode
from omnibind.generation.session import Session

TOL = 5e-5  # float32, logits of magnitude ~10; measured 6.7e-6


def media(n: int) -> dict[str, list[torch.Tensor | None]]:
    """Random preprocessed images and audio for n examples, one example without audio."""
    torch.manual_seed(1)
    audio: list[torch.Tensor | None] = [torch.randn(32, 128) for _ in range(n)]
    audio[1] = None
    return {"image": [torch.rand(3, 32, 32) * 2 - 1 for _ in range(n)], "audio": audio}


PROMPTS = [[2, 10, 11], [2, 12, 13, 14, 15, 16, 17], [2, 20]]


def test_cached_steps_equal_recomputing_without_the_cache() -> None:
    model = tiny_generator()
    prefix = model.prefix(PROMPTS, media(3))
    session = Session(model.decoder, prefix, max_new_tokens=6)
    logits = [session.start()]
    tokens = []
    for _ in range(5):
        tokens.append(logits[-1].argmax(-1))
        logits.append(session.step(tokens[-1]))
    suffix = torch.stack(tokens, dim=1)
    with torch.no_grad():
        full = model(prefix, suffix)  # no cache: every position recomputed
    recomputed = full[:, prefix.embeds.shape[1] - 1:]
    assert (torch.stack(logits, dim=1) - recomputed).abs().max().item() <= TOL
    assert len({tuple(row) for row in suffix.tolist()}) == 3


def test_a_padded_batch_equals_each_example_alone() -> None:
    model = tiny_generator()
    inputs = media(3)
    settings = Decoding(max_new_tokens=6)
    together = model.generate_ids(PROMPTS, inputs, settings)
    for i, prompt in enumerate(PROMPTS):
        alone = model.generate_ids([prompt], {m: [items[i]] for m, items in inputs.items()}, settings)
        assert alone == [together[i]]
    with torch.no_grad():
        batch = model(model.prefix(PROMPTS, inputs))
        for i, prompt in enumerate(PROMPTS):
            single = model(model.prefix([prompt], {m: [items[i]] for m, items in inputs.items()}))[0]
            assert (batch[i, -single.shape[0]:] - single).abs().max().item() <= TOL


def test_decode_stops_at_the_token_limit_and_pads_finished_rows() -> None:
    model = tiny_generator()
    prefix = model.prefix(PROMPTS, media(3))
    free = decode(Session(model.decoder, prefix, 5), Decoding(max_new_tokens=5), eos_id=95, pad_id=0)
    assert free.shape == (3, 5)
    eos = int(free[1, 2])  # pretend the token row 1 writes third is the end of sequence
    stopped = decode(Session(model.decoder, prefix, 5), Decoding(max_new_tokens=5), eos_id=eos, pad_id=0)
    row = stopped[1].tolist()
    assert row[: row.index(eos) + 1] == free[1, : row.index(eos) + 1].tolist()
    assert all(t == 0 for t in row[row.index(eos) + 1:])
