"""Contrastive losses over modality pairs: SigLIP's sigmoid loss (also chunked across ranks) and CLIP's
softmax loss as a baseline. Every loss takes per-example masks so an example that lacks a modality
contributes nothing to the pairs that need it. The trainer reaches them through the registered objectives
"sigmoid" and "softmax" (omnibind.objectives.contrastive)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.distributed as dist
import torch.nn.functional as F

Pair = tuple[str, str]


def pair_logits(x: torch.Tensor, y: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """exp(t')·x·yᵀ + b in float32, whatever precision the embeddings were computed in."""
    return x.float() @ y.float().T * scale.float().exp() + bias.float()


def _all_if_none(mask: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor:
    """The given per-example mask, or every example of the batch."""
    return torch.ones(x.shape[0], dtype=torch.bool, device=x.device) if mask is None else mask


def _sigmoid_terms(logits: torch.Tensor, valid: torch.Tensor, positives: bool) -> torch.Tensor:
    """Σ over valid (i, j) of −log σ(z_ij·logit_ij); z = +1 on the diagonal when `positives`, else −1."""
    signs = -torch.ones_like(logits)
    if positives:
        signs = signs + 2 * torch.eye(*logits.shape, device=logits.device, dtype=logits.dtype)
    return -(F.logsigmoid(signs * logits) * valid).sum()


def sigmoid_loss(
    x: torch.Tensor,
    y: torch.Tensor,
    scale: torch.Tensor,
    bias: torch.Tensor,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """SigLIP: −(1/n) Σ_i Σ_j log σ(z_ij(exp(t')·x_i·y_j + b)) over the n examples whose mask is set."""
    mask = _all_if_none(mask, x)
    valid = (mask[:, None] & mask[None, :]).float()
    n = mask.sum().clamp(min=1)
    return _sigmoid_terms(pair_logits(x, y, scale, bias), valid, positives=True) / n


def softmax_loss(
    x: torch.Tensor,
    y: torch.Tensor,
    scale: torch.Tensor,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """CLIP: mean of the x→y and y→x cross-entropies of exp(t')·x·yᵀ over the masked examples."""
    mask = _all_if_none(mask, x)
    logits = x.float() @ y.float().T * scale.float().exp()
    return (_masked_cross_entropy(logits, mask) + _masked_cross_entropy(logits.T, mask)) / 2


def _masked_cross_entropy(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over valid rows of the cross-entropy against the diagonal, absent columns excluded."""
    logits = logits.masked_fill(~mask[None, :], float("-inf")).masked_fill(~mask[:, None], 0.0)
    targets = torch.arange(logits.shape[0], device=logits.device)
    losses = F.cross_entropy(logits, targets, reduction="none")
    return (losses * mask).sum() / mask.sum().clamp(min=1)


class _NeighbourExchange(torch.autograd.Function):
    """Send a tensor to the next rank and receive the previous rank's; gradients flow back the other way."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor, to_rank: int, from_rank: int, group: dist.ProcessGroup | None):
        ctx.to_rank, ctx.from_rank, ctx.group = to_rank, from_rank, group
        return exchange(tensor, to_rank, from_rank, group)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return exchange(grad.contiguous(), ctx.from_rank, ctx.to_rank, ctx.group), None, None, None


def exchange(tensor: torch.Tensor, to_rank: int, from_rank: int, group: dist.ProcessGroup | None) -> torch.Tensor:
    """Point-to-point ring step (no autograd): returns the tensor `from_rank` sent."""
    received = torch.empty_like(tensor)
    ops = [dist.P2POp(dist.isend, tensor.contiguous(), to_rank, group),
           dist.P2POp(dist.irecv, received, from_rank, group)]
    for request in dist.batch_isend_irecv(ops):
        request.wait()
    return received


def chunked_sigmoid_loss(
    x: torch.Tensor,
    y: torch.Tensor,
    scale: torch.Tensor,
    bias: torch.Tensor,
    mask: torch.Tensor | None = None,
    group: dist.ProcessGroup | None = None,
) -> torch.Tensor:
    """The sigmoid loss of the global batch, computed block by block across ranks.

    Each rank scores its own block (positives and negatives), then receives every other rank's y in
    turn around a ring and adds their negative-only terms; memory stays O(local batch²). The return value
    is world_size × this rank's share, so its mean over ranks is the full-batch loss and DDP's gradient
    averaging gives exactly the full-batch gradients.
    """
    world, rank = dist.get_world_size(group), dist.get_rank(group)
    mask = _all_if_none(mask, x)
    n = mask.sum().float()
    dist.all_reduce(n, group=group)
    total = _sigmoid_terms(pair_logits(x, y, scale, bias), (mask[:, None] & mask[None, :]).float(), True)
    right, left = _global_rank((rank + 1) % world, group), _global_rank((rank - 1) % world, group)
    other_y, other_mask = y, mask
    for _ in range(world - 1):
        other_y = _NeighbourExchange.apply(other_y, right, left, group)
        other_mask = exchange(other_mask.to(torch.uint8), right, left, group).bool()
        valid = (mask[:, None] & other_mask[None, :]).float()
        total = total + _sigmoid_terms(pair_logits(x, other_y, scale, bias), valid, positives=False)
    return total * world / n.clamp(min=1)


def _global_rank(group_rank: int, group: dist.ProcessGroup | None) -> int:
    return group_rank if group is None else dist.get_global_rank(group, group_rank)


class _GatherWithGrad(torch.autograd.Function):
    """All-gather equal-sized blocks; the backward all-reduces the gradient and keeps this rank's rows."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor, group: dist.ProcessGroup | None):
        world, ctx.rank, ctx.rows, ctx.group = dist.get_world_size(group), dist.get_rank(group), tensor.shape[0], group
        parts = [torch.empty_like(tensor) for _ in range(world)]
        dist.all_gather(parts, tensor.contiguous(), group=group)
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, group=ctx.group)
        return grad[ctx.rank * ctx.rows : (ctx.rank + 1) * ctx.rows], None


def gather(tensor: torch.Tensor, group: dist.ProcessGroup | None = None) -> torch.Tensor:
    """The global batch of a per-rank tensor; gradients reach every rank's own rows (any backend)."""
    if tensor.requires_grad:
        return _GatherWithGrad.apply(tensor, group)
    parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size(group))]
    dist.all_gather(parts, tensor.contiguous(), group=group)
    return torch.cat(parts)


LOSS_MODES = ("local", "ring", "gather")


class MultiPairLoss(torch.nn.Module):
    """Sum of a contrastive loss over configured modality pairs, each over the examples with both.

    Modes: "local" (one process), "ring" (chunked sigmoid loss across ranks) and "gather" (every rank
    gathers the global batch and scores it whole: the softmax loss, or the sigmoid loss unchunked).
    In the two distributed modes, DDP's averaging of gradients yields the full-batch gradients.
    """

    def __init__(self, pairs: Sequence[Pair], kind: str = "sigmoid", mode: str = "local") -> None:
        super().__init__()
        if kind not in ("sigmoid", "softmax"):
            raise ValueError(f"loss.kind: {kind!r} (expected 'sigmoid' or 'softmax')")
        if mode not in LOSS_MODES or (mode == "ring" and kind != "sigmoid"):
            raise ValueError(f"loss mode {mode!r} with {kind!r} (expected 'ring' only for the sigmoid loss)")
        self.pairs = [tuple(p) for p in pairs]
        self.kind, self.mode = kind, mode

    def forward(
        self, emb: dict[str, torch.Tensor], masks: dict[str, torch.Tensor], scale: torch.Tensor, bias: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Total loss and the per-pair losses (named "image-text" etc.) for logging."""
        if self.mode == "gather":
            emb = {m: gather(e) for m, e in emb.items()}
            masks = {m: gather(k.to(torch.uint8)).bool() for m, k in masks.items()}
        parts = {}
        for a, b in self.pairs:
            mask = masks[a] & masks[b]
            if self.kind == "softmax":
                parts[f"{a}-{b}"] = softmax_loss(emb[a], emb[b], scale, mask)
            elif self.mode == "ring":
                parts[f"{a}-{b}"] = chunked_sigmoid_loss(emb[a], emb[b], scale, bias, mask)
            else:
                parts[f"{a}-{b}"] = sigmoid_loss(emb[a], emb[b], scale, bias, mask)
        return torch.stack(list(parts.values())).sum(), parts
