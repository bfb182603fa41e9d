"""PaliGemma's prefix-LM attention mask: full attention inside the prefix, causal over the suffix, and
nothing to padding."""

from __future__ import annotations

import torch


def prefix_lm_mask(key_valid: torch.Tensor, key_prefix: torch.Tensor, query_prefix: torch.Tensor) -> torch.Tensor:
    """Boolean (B, 1, Q, K) mask, True where a query may attend to a key.

    The Q queries are the last Q of the K positions (earlier ones come from the cache). A query sees a key
    that is not padding when the key is not after it, or when both belong to the prefix; padding counts as
    prefix (as in transformers) so a padded query row is never empty.
    """
    q, k = query_prefix.shape[1], key_valid.shape[1]
    device = key_valid.device
    query_pos = torch.arange(k - q, k, device=device)[:, None]
    causal = torch.arange(k, device=device)[None, :] <= query_pos
    both_prefix = query_prefix[:, :, None] & key_prefix[:, None, :]
    return (key_valid[:, None, :] & (causal[None] | both_prefix))[:, None]
