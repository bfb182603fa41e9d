"""Beam search with transformers' rules (length penalty, its early-stop heuristic with early_stopping=False), so
a checkpoint's beams give the same tokens here and there."""

from __future__ import annotations

import torch

from omnibind.generation.decoding import Decoding
from omnibind.generation.session import Session

NEG = -1.0e9  # transformers' stand-in for an impossible score


def beam_search(session: Session, settings: Decoding, eos_id: int, pad_id: int) -> torch.Tensor:
    """(B, T) ids of each example's best finished beam; EOS then pad_id after it, T ≤ max_new_tokens."""
    k, limit, lp = settings.beams, settings.max_new_tokens, settings.length_penalty
    logits = session.start()
    batch, vocab = logits.shape
    device = logits.device
    session.select(torch.arange(batch, device=device).repeat_interleave(k))
    logits = logits.repeat_interleave(k, dim=0)

    running = torch.full((batch, k, limit), pad_id, dtype=torch.long, device=device)
    running_scores = torch.full((batch, k), NEG, device=device)
    running_scores[:, 0] = 0.0
    done = running.clone()
    done_scores = torch.full((batch, k), NEG, device=device)
    done_flags = torch.zeros((batch, k), dtype=torch.bool, device=device)
    improvable = torch.ones((batch, 1), dtype=torch.bool, device=device)
    keep = 2 * k
    top_k_mask = torch.arange(keep, device=device) < k
    offsets = torch.arange(batch, device=device)[:, None] * k
    length = 0

    for t in range(limit):
        scores = logits.log_softmax(-1).view(batch, k, vocab) + running_scores[:, :, None]
        cand_scores, flat = scores.view(batch, -1).topk(keep, dim=-1)
        source, token = flat // vocab, flat % vocab
        cand = running.gather(1, source[:, :, None].expand(-1, -1, limit)).clone()
        cand[:, :, t] = token
        length = t + 1
        stops = (token == eos_id) | (t + 1 == limit)

        alive_scores = cand_scores + stops.float() * NEG
        alive = alive_scores.topk(k, dim=-1).indices
        running = cand.gather(1, alive[:, :, None].expand(-1, -1, limit))
        running_scores = alive_scores.gather(1, alive)
        rows = (source.gather(1, alive) + offsets).flatten()

        finals = cand_scores / ((t + 1) ** lp)
        finals = finals + (~improvable).float() * NEG + (~(stops & top_k_mask)).float() * NEG
        merged = torch.cat([done_scores, finals], dim=1).topk(k, dim=-1).indices
        done = torch.cat([done, cand], dim=1).gather(1, merged[:, :, None].expand(-1, -1, limit))
        done_scores = torch.cat([done_scores, finals], dim=1).gather(1, merged)
        done_flags = torch.cat([done_flags, stops & top_k_mask], dim=1).gather(1, merged)

        best_possible = running_scores[:, :1] / ((t + 1) ** lp)
        worst_done = torch.where(done_flags, done_scores.min(dim=1, keepdim=True).values, NEG)
        improvable = improvable & (best_possible > worst_done).any(dim=-1, keepdim=True)
        if not bool(improvable.any()) or bool(stops.all()):
            break
        session.select(rows)
        logits = session.step(running[:, :, t].flatten())
    return done[:, 0, :length]
