"""How the next token is chosen: greedy, or sampled with temperature and top-p from a seeded generator; the
loop that stops at EOS or a token limit."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from omnibind.errors import InputError
from omnibind.generation.session import Session


@dataclass(frozen=True)
class Decoding:
    """Decoding settings: beams > 1 is beam search; `sample` draws with temperature and top-p (seeded)."""

    max_new_tokens: int = 32
    beams: int = 1
    sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    length_penalty: float = 1.0

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise InputError("max_new_tokens", f"is {self.max_new_tokens}", "at least 1")
        if self.beams < 1:
            raise InputError("beams", f"is {self.beams}", "at least 1")
        if self.sample and self.beams > 1:
            raise InputError("sample", "cannot be combined with beams > 1", "one of sampling or beam search")
        if self.temperature <= 0:
            raise InputError("temperature", f"is {self.temperature}", "a positive number")
        if not 0 < self.top_p <= 1:
            raise InputError("top_p", f"is {self.top_p}", "0 < top_p ≤ 1")


def top_p_filter(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """Logits with everything outside the smallest set of most likely tokens whose probability reaches top_p
    set to -inf (the most likely token always stays)."""
    if top_p >= 1.0:
        return logits
    sorted_logits, order = logits.sort(dim=-1, descending=True)
    before = sorted_logits.softmax(-1).cumsum(-1) - sorted_logits.softmax(-1)
    drop_sorted = before >= top_p
    drop_sorted[..., 0] = False
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))


def choose(logits: torch.Tensor, settings: Decoding, generator: torch.Generator | None) -> torch.Tensor:
    """One (B,) token per row from (B, vocab) logits: the argmax, or a draw after temperature and top-p."""
    if not settings.sample:
        return logits.argmax(-1)
    probs = top_p_filter(logits / settings.temperature, settings.top_p).softmax(-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(1)


def decode(session: Session, settings: Decoding, eos_id: int, pad_id: int) -> torch.Tensor:
    """(B, T) generated ids, T ≤ max_new_tokens; a row that wrote EOS is padded with pad_id afterwards."""
    logits = session.start()
    generator = None
    if settings.sample:
        generator = torch.Generator(device=logits.device)
        if settings.seed is None:
            generator.seed()  # a fresh seed for this generator only; the global RNG is left alone
        else:
            generator.manual_seed(settings.seed)
    finished = torch.zeros(logits.shape[0], dtype=torch.bool, device=logits.device)
    out: list[torch.Tensor] = []
    for t in range(settings.max_new_tokens):
        token = choose(logits, settings, generator).masked_fill(finished, pad_id)
        out.append(token)
        finished |= token == eos_id
        if bool(finished.all()) or t == settings.max_new_tokens - 1:
            break
        logits = session.step(token)
    return torch.stack(out, dim=1)


def trim(ids: torch.Tensor, eos_id: int) -> list[list[int]]:
    """Each row's ids up to (not including) its first EOS."""
    rows: list[list[int]] = []
    for row in ids.tolist():
        rows.append(row[: row.index(eos_id)] if eos_id in row else row)
    return rows
