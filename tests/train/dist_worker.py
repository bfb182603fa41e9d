"""Run under torchrun by the distributed tests: each rank computes its share of the loss on its slice of
one seeded global batch and saves its loss and gradients for the test to compare with one process."""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F

from omnibind.losses import MultiPairLoss

GLOBAL_BATCH, DIM = 12, 16


def global_inputs() -> dict[str, torch.Tensor]:
    """The seeded global batch every rank (and the single-process reference) builds identically."""
    g = torch.Generator().manual_seed(0)
    return {
        "x": F.normalize(torch.randn(GLOBAL_BATCH, DIM, generator=g, dtype=torch.float64), dim=-1),
        "y": F.normalize(torch.randn(GLOBAL_BATCH, DIM, generator=g, dtype=torch.float64), dim=-1),
        "mx": torch.rand(GLOBAL_BATCH, generator=g) > 0.2,
        "my": torch.rand(GLOBAL_BATCH, generator=g) > 0.2,
        "scale": torch.tensor([2.0], dtype=torch.float64),
        "bias": torch.tensor([-3.0], dtype=torch.float64),
    }


def main(kind: str, mode: str, out: Path) -> None:
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    data = global_inputs()
    rows = slice(rank * GLOBAL_BATCH // world, (rank + 1) * GLOBAL_BATCH // world)
    x = data["x"][rows].clone().requires_grad_()
    y = data["y"][rows].clone().requires_grad_()
    scale, bias = data["scale"].clone().requires_grad_(), data["bias"].clone().requires_grad_()
    masks = {"a": data["mx"][rows], "b": data["my"][rows]}
    loss, _ = MultiPairLoss([("a", "b")], kind, mode)({"a": x, "b": y}, masks, scale, bias)
    loss.backward()
    torch.save({"loss": loss.detach(), "x": x.grad, "y": y.grad, "scale": scale.grad, "bias": bias.grad,
                "rows": (rows.start, rows.stop)}, out / f"rank{rank}.pt")
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], Path(sys.argv[3]))
