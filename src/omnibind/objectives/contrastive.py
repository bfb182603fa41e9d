"""The contrastive objectives over the configured modality pairs: SigLIP's sigmoid loss (chunked around a
ring of ranks, or over the gathered global batch) and CLIP's softmax loss (over the gathered batch). Both
read the pooled embeddings alone, so exact gradient caching applies to them."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from omnibind.errors import InputError
from omnibind.losses import MultiPairLoss
from omnibind.objectives.base import Batch, Objective, ObjectiveSetup, Outputs, mask

if TYPE_CHECKING:
    from omnibind.models.model import OmniBind


class ContrastiveObjective(Objective):
    """Sum over pairs of `kind`'s loss, each pair over the examples that carry both modalities."""

    kind: str = ""
    supports_grad_cache = True

    def __init__(self, setup: ObjectiveSetup) -> None:
        super().__init__(setup)
        if setup.options:
            raise InputError("loss.options", f"{sorted(setup.options)} given to {self.name!r}, which takes none",
                             "no options (they configure objectives such as captioning)")
        self.modalities = tuple(dict.fromkeys(m for pair in setup.pairs for m in pair))
        self.loss = MultiPairLoss(setup.pairs, self.kind, self.mode(setup))

    def mode(self, setup: ObjectiveSetup) -> str:
        """How the global batch is scored across ranks: "local" in one process, else "gather"."""
        return "local" if setup.world_size == 1 else "gather"

    def __call__(self, outputs: Outputs, batch: Batch, model: OmniBind) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        emb = {m: outputs[m] for m in self.modalities}
        masks = {m: mask(batch, m) for m in self.modalities}
        loss, parts = self.loss(emb, masks, model.logit_scale, model.logit_bias)
        return loss, parts


class SigmoidObjective(ContrastiveObjective):
    """SigLIP: −(1/n) Σ_ij log σ(z_ij(exp(t')·x_i·y_j + b)); across ranks chunked (ring) unless not chunked."""

    name = "sigmoid"
    kind = "sigmoid"

    def mode(self, setup: ObjectiveSetup) -> str:
        if setup.world_size > 1 and setup.chunked:
            return "ring"
        return super().mode(setup)


class SoftmaxObjective(ContrastiveObjective):
    """CLIP: the mean of the two cross-entropies of exp(t')·x·yᵀ, over the gathered global batch."""

    name = "softmax"
    kind = "softmax"
