"""Greedy, sampling and beam search on a scripted next-token table, where the right answer is known."""

from __future__ import annotations

import math

import pytest
import torch

from omnibind.errors import InputError
from omnibind.generation import Decoding
from omnibind.generation.beam import beam_search
from omnibind.generation.decoding import choose, decode, top_p_filter, trim

EOS, PAD, VOCAB = 1, 0, 6


class Scripted:
    """A Session stand-in whose next-token log-probabilities depend on the last token only."""

    def __init__(self, table: dict[int, list[float]], batch: int = 1, start: int = 5) -> None:
        self.table = {k: torch.tensor(v).log() for k, v in table.items()}
        self.last = torch.full((batch,), start)
        self.steps = 0

    def start(self) -> torch.Tensor:
        return torch.stack([self.table[int(t)] for t in self.last])

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        self.steps += 1
        self.last = tokens.clone()
        return self.start()

    def select(self, rows: torch.Tensor) -> None:
        self.last = self.last.index_select(0, rows)


def flat_row() -> list[float]:
    return [1e-6, 0.19, 0.21, 0.2, 0.2, 0.2 - 1e-6]


# After the start token (5): 2 is likeliest (0.5) but leads to a nearly flat distribution (2 again slightly
# ahead); 3 (0.45) leads almost surely to 4, then EOS. Greedy takes 2 2 2 ...; a beam of 2 finds 3 4 EOS.
TRAP = {
    5: [1e-6, 1e-6, 0.5, 0.45, 0.05 - 3e-6, 1e-6],
    2: flat_row(),
    3: [1e-6, 1e-6, 1e-6, 1e-6, 1 - 5e-6, 1e-6],
    4: [1e-6, 1 - 5e-6, 1e-6, 1e-6, 1e-6, 1e-6],
    1: [1e-6, 1 - 5e-6, 1e-6, 1e-6, 1e-6, 1e-6],
}
TRAP[0] = TRAP[1]


def test_greedy_takes_the_likeliest_token_each_step() -> None:
    out = trim(decode(Scripted(TRAP), Decoding(max_new_tokens=4), EOS, PAD), EOS)  # type: ignore[arg-type]
    assert out == [[2, 2, 2, 2]]  # stopped by the limit, never reaching EOS


def test_greedy_stops_at_eos_and_pads_after_it() -> None:
    one_hot = {5: 4, 4: 1, 1: 0, 0: 0}  # 5 → 4 → EOS → padding, with certainty
    chain = {k: [1.0 if i == nxt else 1e-9 for i in range(VOCAB)] for k, nxt in one_hot.items()}
    session = Scripted(chain, batch=2)
    session.last = torch.tensor([5, 4])
    ids = decode(session, Decoding(max_new_tokens=10), EOS, PAD)  # type: ignore[arg-type]
    assert ids.tolist() == [[4, 1], [1, 0]]  # row 2 wrote EOS first, then padding; the loop ends when all did
    assert session.steps == 1
    assert trim(ids, EOS) == [[4], []]


def test_beam_search_finds_the_likelier_sequence_greedy_misses() -> None:
    beam = trim(beam_search(Scripted(TRAP), Decoding(max_new_tokens=4, beams=2), EOS, PAD), EOS)  # type: ignore[arg-type]
    assert beam == [[3, 4]]
    one = trim(beam_search(Scripted(TRAP), Decoding(max_new_tokens=4, beams=1), EOS, PAD), EOS)  # type: ignore[arg-type]
    greedy = trim(decode(Scripted(TRAP), Decoding(max_new_tokens=4), EOS, PAD), EOS)  # type: ignore[arg-type]
    assert one == greedy


def test_top_p_keeps_the_smallest_set_reaching_p() -> None:
    logits = torch.tensor([[0.2, 0.5, 0.3]]).log()
    kept = {p: torch.isfinite(top_p_filter(logits, p))[0].tolist() for p in (0.4, 0.6, 0.85, 1.0)}
    assert kept[0.4] == [False, True, False]
    assert kept[0.6] == [False, True, True]
    assert kept[0.85] == [True, True, True]
    assert kept[1.0] == [True, True, True]


def test_sampling_follows_temperature_and_is_seeded() -> None:
    logits = torch.tensor([[1.0, 0.0, -1.0, 0.5]]).repeat(4000, 1)
    settings = Decoding(sample=True, temperature=2.0)
    draws = choose(logits, settings, torch.Generator().manual_seed(0))
    freq = torch.bincount(draws, minlength=4).float() / len(draws)
    expected = (logits[0] / 2.0).softmax(-1)
    assert (freq - expected).abs().max().item() < 0.03  # 4000 draws: standard error ≤ 0.008
    again = choose(logits, settings, torch.Generator().manual_seed(0))
    other = choose(logits, settings, torch.Generator().manual_seed(1))
    assert torch.equal(draws, again) and not torch.equal(draws, other)
    nucleus = choose(logits, Decoding(sample=True, top_p=0.3), torch.Generator().manual_seed(0))
    assert bool((nucleus == 0).all())  # only the likeliest token is inside p = 0.3
    cold = choose(logits, Decoding(sample=True, temperature=1e-3), torch.Generator().manual_seed(0))
    assert bool((cold == 0).all())


def test_seeded_sampling_through_decode_repeats() -> None:
    def run(seed: int) -> list[list[int]]:
        settings = Decoding(max_new_tokens=12, sample=True, seed=seed)
        return trim(decode(Scripted(TRAP), settings, EOS, PAD), EOS)  # type: ignore[arg-type]

    assert run(3) == run(3)
    assert len({tuple(run(s)[0]) for s in range(8)}) > 1


@pytest.mark.parametrize("field,value", [("max_new_tokens", 0), ("beams", 0), ("temperature", 0.0),
                                         ("top_p", 0.0), ("top_p", 1.5)])
def test_bad_settings_are_named(field: str, value: float) -> None:
    with pytest.raises(InputError, match=field):
        Decoding(**{field: value})  # type: ignore[arg-type]


def test_sampling_with_beams_is_refused() -> None:
    with pytest.raises(InputError, match="sample"):
        Decoding(sample=True, beams=2)


def test_trap_probabilities_are_as_described() -> None:
    greedy = math.log(0.5) + math.log(flat_row()[2]) * 3
    beam = math.log(0.45) + math.log(1 - 5e-6) * 2
    assert beam > greedy
