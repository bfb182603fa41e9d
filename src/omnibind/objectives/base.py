"""What an objective is: model outputs + batch → (loss, named parts), built from an ObjectiveSetup. It
declares the token sequences it needs from the forward pass and whether exact gradient caching suits it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

from omnibind.modalities import IMAGE, TEXT

if TYPE_CHECKING:
    from omnibind.models.model import OmniBind

Pair = tuple[str, str]
Outputs = dict[str, torch.Tensor]
"""OmniBind.forward's result: unit (B, D) embeddings keyed by modality, "<m>/tokens" sequences if asked."""
Batch = dict[str, torch.Tensor]
"""The device batch: tower inputs keyed by modality and a "<m>_mask" (B,) bool tensor for each."""


@dataclass(frozen=True)
class ObjectiveSetup:
    """What an objective is built from: the modality pairs it scores, the number of processes the global
    batch is split over, whether a loss that can be computed block by block across them should be, and the
    objective's own settings (the config's loss.options)."""

    pairs: tuple[Pair, ...] = ((IMAGE.name, TEXT.name),)
    world_size: int = 1
    chunked: bool = True
    options: Mapping[str, Any] = field(default_factory=dict)


class Objective(ABC):
    """A training objective. Subclasses set `name` (the config's loss.kind), `supports_grad_cache` (True only
    when the loss reaches the towers through the pooled embeddings alone, so that train.accum_steps > 1 may
    embed micro-batches without a graph) and `token_modalities` (the towers whose token sequences it reads).
    `reads_every_parameter` is False for an objective that leaves some of the model unused (a pooling head, a
    tower read only for its inputs), so that DDP looks for unused parameters each step."""

    name: ClassVar[str]
    supports_grad_cache: ClassVar[bool] = False
    reads_every_parameter: ClassVar[bool] = True
    token_modalities: tuple[str, ...] = ()

    def __init__(self, setup: ObjectiveSetup) -> None:
        self.setup = setup

    def modules(self, model: OmniBind) -> dict[str, nn.Module]:
        """Trainable modules the objective owns (a decoder and its projections), by the attribute name the
        trainer attaches each under on the model: before locking, DDP and the optimiser, so that they are
        locked by pattern, reduced, optimised, checkpointed and resumed with the towers. None by default."""
        return {}

    def prepare(self, batch: Mapping[str, Any]) -> Batch:
        """Extra (B, ...) tensors the loss reads, derived from the host batch (which also holds non-tensor
        fields such as the examples' "key"s); the trainer moves them to the device beside the inputs."""
        return {}

    def checkpoint_sections(self) -> dict[str, Any]:
        """JSON sections the objective adds to the config of every checkpoint (what loads its modules)."""
        return {}

    @abstractmethod
    def __call__(self, outputs: Outputs, batch: Batch, model: OmniBind) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The loss to minimise and its named parts (logged as loss/<part>)."""


def mask(batch: Batch, modality: str) -> torch.Tensor:
    """The (B,) bool mask of the examples that carry `modality`."""
    return batch[f"{modality}_mask"]


def pair_name(pair: Pair) -> str:
    """"image-text": the name under which a pair's loss is logged."""
    return f"{pair[0]}-{pair[1]}"
