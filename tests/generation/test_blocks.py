"""The decoder's pieces against their definitions: Gemma's RMSNorm, rotary positions, the prefix-LM mask."""

from __future__ import annotations

import torch

from omnibind.generation.layers import RMSNorm, Rotary, rotate
from omnibind.generation.mask import prefix_lm_mask


def test_rms_norm_scales_by_one_plus_weight() -> None:
    torch.manual_seed(0)
    norm = RMSNorm(8, eps=1e-6)
    with torch.no_grad():
        norm.weight.copy_(torch.randn(8))
    x = torch.randn(3, 8) * 5
    expected = x / (x.pow(2).mean(-1, keepdim=True) + 1e-6).sqrt() * (1 + norm.weight)
    assert torch.allclose(norm(x), expected, atol=1e-6)
    assert norm(x.to(torch.bfloat16)).dtype == torch.bfloat16


def test_rotary_scores_depend_only_on_relative_position() -> None:
    torch.manual_seed(0)
    rotary = Rotary(16, 10_000.0)
    q, k = torch.randn(1, 1, 1, 16), torch.randn(1, 1, 1, 16)

    def score(pq: int, pk: int) -> float:
        cq, sq = rotary(torch.tensor([[pq]]), torch.float32)
        ck, sk = rotary(torch.tensor([[pk]]), torch.float32)
        return (rotate(q, cq, sq) * rotate(k, ck, sk)).sum().item()

    assert abs(score(5, 2) - score(103, 100)) < 1e-4
    assert abs(score(5, 2) - score(2, 5)) > 1e-3  # direction matters
    cos, sin = rotary(torch.tensor([[0]]), torch.float32)
    assert torch.equal(rotate(q, cos, sin), q)  # position 0 is the identity


def test_prefix_lm_mask_is_full_over_the_prefix_causal_over_the_suffix() -> None:
    # one row: a pad, three prefix positions, two suffix positions
    valid = torch.tensor([[False, True, True, True, True, True]])
    prefix = torch.tensor([[True, True, True, True, False, False]])
    mask = prefix_lm_mask(valid, prefix, prefix)[0, 0].int()
    expected = torch.tensor([
        [0, 1, 1, 1, 0, 0],  # a padded query sees the prefix (never an empty row), never padding
        [0, 1, 1, 1, 0, 0],
        [0, 1, 1, 1, 0, 0],  # prefix queries see the whole prefix, later prefix positions included
        [0, 1, 1, 1, 0, 0],
        [0, 1, 1, 1, 1, 0],  # suffix queries: causal
        [0, 1, 1, 1, 1, 1],
    ])
    assert torch.equal(mask, expected)


def test_prefix_lm_mask_with_cached_keys_keeps_the_last_queries() -> None:
    valid = torch.tensor([[True, True, True, True]])
    key_prefix = torch.tensor([[True, True, False, False]])
    mask = prefix_lm_mask(valid, key_prefix, torch.tensor([[False]]))
    assert mask.shape == (1, 1, 1, 4) and bool(mask.all())
    mask = prefix_lm_mask(valid, key_prefix, torch.tensor([[False, False]]))
    assert mask[0, 0].int().tolist() == [[1, 1, 1, 0], [1, 1, 1, 1]]
