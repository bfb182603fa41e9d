"""Encoder blocks against reference formulas; activation checkpointing changes nothing numerically."""

from __future__ import annotations

import math

import torch

from omnibind.models.heads import MAPHead
from omnibind.models.transformer import Attention, Encoder

TOL = 1e-5  # fp32 max abs


def naive_attention(module: Attention, x: torch.Tensor) -> torch.Tensor:
    """Softmax(QKᵀ/√d)V per head, written out with explicit q/k/v slices of the fused weight."""
    b, n, d = x.shape
    h, hd = module.heads, d // module.heads
    wq, wk, wv = module.qkv.weight.split(d)
    bq, bk, bv = module.qkv.bias.split(d)
    q, k, v = ((x @ w.T + bias).view(b, n, h, hd).transpose(1, 2) for w, bias in ((wq, bq), (wk, bk), (wv, bv)))
    weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hd), dim=-1)
    y = (weights @ v).transpose(1, 2).reshape(b, n, d)
    return module.out(y)


def test_attention_equals_naive_formula() -> None:
    torch.manual_seed(0)
    module = Attention(48, 4)
    x = torch.randn(3, 7, 48)
    assert (module(x) - naive_attention(module, x)).abs().max() < TOL


def test_map_head_equals_multihead_attention() -> None:
    """Our split q / kv projections compute what nn.MultiheadAttention does with the packed weight."""
    torch.manual_seed(0)
    head = MAPHead(32, 4, 64)
    mha = torch.nn.MultiheadAttention(32, 4, batch_first=True)
    with torch.no_grad():
        mha.in_proj_weight.copy_(torch.cat([head.q.weight, head.kv.weight]))
        mha.in_proj_bias.copy_(torch.cat([head.q.bias, head.kv.bias]))
        mha.out_proj.load_state_dict(head.out.state_dict())
    x = torch.randn(2, 9, 32)
    y = mha(head.probe.expand(2, -1, -1), x, x)[0]
    expected = (y + head.mlp(head.norm(y)))[:, 0]
    assert (head(x) - expected).abs().max() < TOL


def test_activation_checkpointing_is_exact() -> None:
    torch.manual_seed(0)
    encoder = Encoder(32, 3, 4, 64).train()
    x = torch.randn(2, 5, 32, requires_grad=True)
    plain = encoder(x)
    plain.square().sum().backward()
    grads = [p.grad.clone() for p in encoder.parameters()]
    encoder.zero_grad()
    encoder.grad_checkpointing = True
    checkpointed = encoder(x)
    checkpointed.square().sum().backward()
    assert torch.equal(plain, checkpointed)
    for before, param in zip(grads, encoder.parameters(), strict=True):
        assert (before - param.grad).abs().max() < TOL


def test_encoder_is_permutation_equivariant_without_positions() -> None:
    """Self-attention without positions commutes with token order: a property of a correct encoder."""
    torch.manual_seed(0)
    encoder = Encoder(32, 2, 4, 64).eval()
    x = torch.randn(1, 6, 32)
    perm = torch.randperm(6)
    assert (encoder(x)[:, perm] - encoder(x[:, perm])).abs().max() < TOL
