"""Training the connectors of a composed model (`omnibind compose`) from text alone, as C-MCR does (arXiv
2305.14381): the base text tower and a foreign space's own text tower read the same sentences, and the
connector of that space learns to carry the foreign text embeddings onto the base ones; the foreign towers
that share the connector (the audio tower of an audio–text model) follow through it. `text_bridge_sigmoid`
adds SigLIP's loss over the configured pairs (ImageBind-style binding with paired data) to the bridge."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import torch
import torch.distributed as dist
import torch.nn.functional as F

from omnibind.errors import InputError
from omnibind.modalities import TEXT
from omnibind.objectives.base import Batch, Objective, ObjectiveSetup, Outputs, mask
from omnibind.objectives.contrastive import SigmoidObjective

if TYPE_CHECKING:
    from omnibind.models.model import OmniBind


def bridged_modalities(setup: ObjectiveSetup, source: str = "loss.pairs") -> tuple[str, ...]:
    """The connected modalities a text bridge trains: the partners of text in the configured pairs."""
    text = TEXT.name
    found = []
    for pair in setup.pairs:
        if text not in pair or pair[0] == pair[1]:
            raise InputError(source, f"{list(pair)} does not pair a connected modality with {text}",
                             f"pairs such as [audio, {text}]: the modality whose connector the text bridge trains")
        found.append(pair[1] if pair[0] == text else pair[0])
    return tuple(dict.fromkeys(found))


def bridge_losses(modalities: tuple[str, ...], outputs: Outputs, batch: Batch,
                  model: OmniBind) -> dict[str, torch.Tensor]:
    """Per bridged modality m, `m~text`: the mean 1 − cos, over the examples with text, between the connected
    foreign text embedding and the base one. A regression, not a contrastive loss: where the two spaces are
    exactly alignable (one a rotation of the other) its minimum is the exact map, which a contrastive term
    with a fixed temperature would trade for spreading near-identical sentences apart.

    Across processes the mean is over the global batch's captions: this rank's sum, divided by the number of
    captions on every rank, times the number of ranks (DDP averages gradients and the logged parts), so that
    ranks holding different numbers of captions train as one process would."""
    text = TEXT.name
    anchor = getattr(model.tower(text), "anchor", None)
    if anchor is None:
        raise InputError(f"towers.{text}", "has no foreign text towers to bridge through",
                         "a model composed by `omnibind compose` with a text tower in every --from")
    keep = mask(batch, text)
    target = outputs[text][keep].float()
    share = _global_share(keep)
    parts: dict[str, torch.Tensor] = {}
    for m in modalities:
        connect = getattr(model.tower(m), "connect", None)
        if connect is None:
            raise InputError(f"towers.{m}", "is not a connected tower", "a tower added by `omnibind compose`")
        mapped = F.normalize(connect(anchor(m, batch[text][keep])).float(), dim=-1)
        distance = 1 - (mapped * target).sum(-1)
        parts[f"{m}~{text}"] = distance.sum() * share  # no text anywhere: 0, still tied to the connector
    return parts


def _global_share(keep: torch.Tensor) -> torch.Tensor:
    """1 / (captions in the global batch) times the number of ranks (1 / local count in one process); 0 when no
    rank has a caption. Every rank calls it every step (a collective)."""
    count = keep.sum().to(torch.float64)
    world = 1
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        world = dist.get_world_size()
        count = count.clone()
        dist.all_reduce(count)
    return (world / count.clamp(min=1)).float()


class TextBridge(Objective):
    """C-MCR's text-only connector training over the pairs [m, text] (m: a connected modality)."""

    name = "text_bridge"
    reads_every_parameter: ClassVar[bool] = False  # the connected towers run, but only their connectors learn

    def __init__(self, setup: ObjectiveSetup) -> None:
        super().__init__(setup)
        self.bridged = bridged_modalities(setup)

    def __call__(self, outputs: Outputs, batch: Batch, model: OmniBind) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        parts = bridge_losses(self.bridged, outputs, batch, model)
        return torch.stack(list(parts.values())).sum(), parts


class TextBridgeSigmoid(SigmoidObjective):
    """Both at once: SigLIP's loss over the configured pairs (paired data) plus the text bridge of every
    connected modality among them (text alone)."""

    name = "text_bridge_sigmoid"
    supports_grad_cache = False  # the bridge runs the anchors itself
    reads_every_parameter: ClassVar[bool] = False

    def __call__(self, outputs: Outputs, batch: Batch, model: OmniBind) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        loss, parts = super().__call__(outputs, batch, model)
        connected = tuple(m for m in self.modalities if hasattr(model.tower(m), "connect"))
        if not connected:
            raise InputError("loss.pairs", f"name no connected tower ({', '.join(self.modalities)})",
                             "a pair with a modality added by `omnibind compose`")
        bridge = bridge_losses(connected, outputs, batch, model)
        return loss + torch.stack(list(bridge.values())).sum(), {**parts, **bridge}
