"""Losses against direct, naive formulas: values, gradients (autograd of the naive form) and masking."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from omnibind.losses import MultiPairLoss, sigmoid_loss, softmax_loss

TOL = 1e-5


def naive_sigmoid(x, y, t, b) -> torch.Tensor:
    """−(1/n) Σ_i Σ_j log σ(z_ij (exp(t)·x_i·y_j + b)) with explicit loops."""
    n = x.shape[0]
    total = 0.0
    for i in range(n):
        for j in range(n):
            z = 1.0 if i == j else -1.0
            total = total - torch.log(torch.sigmoid(z * (torch.exp(t) * (x[i] @ y[j]) + b)))
    return (total / n).squeeze()


def naive_softmax(x, y, t) -> torch.Tensor:
    logits = torch.exp(t) * x @ y.T
    n = x.shape[0]
    rows = -sum(torch.log(torch.softmax(logits[i], 0)[i]) for i in range(n)) / n
    cols = -sum(torch.log(torch.softmax(logits[:, j], 0)[j]) for j in range(n)) / n
    return ((rows + cols) / 2).squeeze()


def unit(*shape: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(*shape, generator=g, dtype=torch.float64), dim=-1).requires_grad_()


def params(t: float = math.log(10), b: float = -10.0):
    return (torch.tensor([t], dtype=torch.float64, requires_grad=True),
            torch.tensor([b], dtype=torch.float64, requires_grad=True))


@pytest.mark.parametrize(("t", "b"), [(math.log(10), -10.0), (2.0, 0.5)])
def test_sigmoid_value_and_gradients_match_naive(t: float, b: float) -> None:
    x, y = unit(6, 8, seed=0), unit(6, 8, seed=1)
    scale, bias = params(t, b)
    ours = sigmoid_loss(x, y, scale, bias)
    ref = naive_sigmoid(x, y, scale, bias)
    assert abs(ours.item() - ref.item()) < TOL
    got = torch.autograd.grad(ours, (x, y, scale, bias))
    want = torch.autograd.grad(ref, (x, y, scale, bias))
    for g, w in zip(got, want, strict=True):
        assert (g - w).abs().max() < TOL


def test_softmax_value_and_gradients_match_naive() -> None:
    x, y = unit(5, 8, seed=2), unit(5, 8, seed=3)
    scale, _ = params(2.5)
    ours, ref = softmax_loss(x, y, scale), naive_softmax(x, y, scale)
    assert abs(ours.item() - ref.item()) < TOL
    for g, w in zip(torch.autograd.grad(ours, (x, y, scale)), torch.autograd.grad(ref, (x, y, scale)), strict=True):
        assert (g - w).abs().max() < TOL


@pytest.mark.parametrize("loss", ["sigmoid", "softmax"])
def test_mask_equals_dropping_the_examples(loss: str) -> None:
    """An example missing a modality contributes nothing: same value and gradients as leaving it out."""
    x, y = unit(7, 8, seed=4), unit(7, 8, seed=5)
    scale, bias = params(2.0, -1.0)
    mask = torch.tensor([True, False, True, True, False, True, True])

    def run(xx, yy, m=None):
        return sigmoid_loss(xx, yy, scale, bias, m) if loss == "sigmoid" else softmax_loss(xx, yy, scale, m)

    masked = run(x, y, mask)
    dropped = run(x[mask], y[mask])
    assert abs(masked.item() - dropped.item()) < TOL
    gx, = torch.autograd.grad(masked, x)
    assert gx[~mask].abs().max() == 0
    gx_dropped, = torch.autograd.grad(dropped, x)
    assert (gx[mask] - gx_dropped[mask]).abs().max() < TOL


def test_all_masked_is_zero_not_nan() -> None:
    x, y = unit(3, 4, seed=6), unit(3, 4, seed=7)
    scale, bias = params()
    none = torch.zeros(3, dtype=torch.bool)
    assert sigmoid_loss(x, y, scale, bias, none).item() == 0
    assert softmax_loss(x, y, scale, none).item() == 0


def test_multi_pair_sums_pairs_with_their_own_masks() -> None:
    emb = {m: unit(6, 8, seed=i) for i, m in enumerate(("image", "text", "audio"))}
    masks = {"image": torch.tensor([1, 1, 1, 0, 1, 1]).bool(), "text": torch.ones(6, dtype=torch.bool),
             "audio": torch.tensor([0, 1, 1, 1, 0, 1]).bool()}
    scale, bias = params()
    total, parts = MultiPairLoss([("image", "text"), ("audio", "text")])(emb, masks, scale, bias)
    expected = (sigmoid_loss(emb["image"], emb["text"], scale, bias, masks["image"])
                + sigmoid_loss(emb["audio"], emb["text"], scale, bias, masks["audio"]))
    assert set(parts) == {"image-text", "audio-text"}
    assert abs(total.item() - expected.item()) < TOL
