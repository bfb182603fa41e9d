"""torch.distributed set-up for torchrun (gloo on CPU, NCCL on GPU), model wrapping (DDP / FSDP2) and
the all-reduce of the loss scalars t' and b, which stay outside the wrappers."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from omnibind.errors import InputError
from omnibind.hardware import cpu_model

# t' and b are used by the loss, outside the wrapped forward, so the wrappers leave them alone and
# the trainer averages their gradients itself.
LOSS_SCALARS = ("logit_scale", "logit_bias")


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands: rank, world size, and the device it trains on."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Rank 0 writes logs and checkpoints."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """More than one process."""
        return self.world_size > 1


def setup() -> DistInfo:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1); a lone process needs none."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return DistInfo(rank, world, local_rank, device)


def teardown() -> None:
    """Leave the process group if this process joined one."""
    if dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    """Wait for every rank (a no-op for one process)."""
    if dist.is_initialized():
        dist.barrier()


def wrap(model: nn.Module, strategy: str, info: DistInfo, find_unused: bool = False,
         outside: Sequence[str] = ()) -> nn.Module:
    """DDP or FSDP2 around the towers for several processes; the bare model for one. `find_unused`: the
    objective leaves some parameters without a gradient (DDP must look for them every step). `outside`: child
    modules the objective runs after the wrapped forward (a decoder): DDP leaves them alone, like t' and b, and
    `average_outside_grads` reduces their gradients."""
    if not info.distributed:
        return model
    if strategy == "fsdp":
        outside = sorted(name for name, _ in model.named_children() if name != "towers")
        if outside:  # FSDP2 shards the towers alone: other modules' gradients would never be reduced
            raise InputError("train.strategy", f"fsdp shards the towers only, and this model also trains {outside}",
                             "ddp (objectives that own modules, such as captioning, train under DDP)")
        from torch.distributed.fsdp import fully_shard

        for tower in model.towers.values():
            for block in tower.encoder.blocks:
                fully_shard(block)
            fully_shard(tower)
        return model
    from torch.nn.parallel import DistributedDataParallel

    # DDP names a root-level parameter "logit_scale" in one place and ".logit_scale" where it builds its
    # reducer; both spellings keep t' and b out of its buckets (else a backward that does not reach them,
    # as gradient caching's per-chunk passes, leaves their bucket unreduced).
    # The modules used after the forward are kept out too: DDP's search for unused parameters walks the forward's
    # outputs only, and would mark them ready a second time when the loss's backward reaches them.
    names = [*LOSS_SCALARS, *outside_parameters(model, outside)]
    ignored = [f"{prefix}{name}" for name in names for prefix in ("", ".")]
    DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(model, ignored)
    device_ids = [info.device.index] if info.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids, find_unused_parameters=find_unused)


def average_loss_scalar_grads(model: nn.Module) -> None:
    """All-reduce (mean) the gradients of t' and b, which no wrapper reduces."""
    if not dist.is_initialized():
        return
    for name in LOSS_SCALARS:
        param = getattr(model, name)
        if param.grad is not None:
            dist.all_reduce(param.grad)  # a sum: gloo has no AVG, so divide for every backend alike
            param.grad /= dist.get_world_size()


def outside_parameters(model: nn.Module, modules: Sequence[str]) -> list[str]:
    """The parameter names of the child modules named in `modules` ("decoder.blocks.0.attn.q.weight", ...)."""
    return [name for name, _ in model.named_parameters() if name.split(".")[0] in modules]


def average_outside_grads(model: nn.Module, modules: Sequence[str]) -> None:
    """All-reduce (mean) the gradients of the child modules no wrapper reduces, in one flat buffer; a rank whose
    batch did not reach a parameter contributes zeros."""
    if not dist.is_initialized() or not modules:
        return
    params = [p for name, p in model.named_parameters() if name.split(".")[0] in modules and p.requires_grad]
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    flat = torch.cat([p.grad.reshape(-1) for p in params])  # type: ignore[union-attr]  # filled above
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    for p in params:
        n = p.numel()
        p.grad.copy_(flat[offset:offset + n].view_as(p))  # type: ignore[union-attr]
        offset += n


def unwrap(model: nn.Module) -> nn.Module:
    """The OmniBind inside a DDP wrapper (FSDP2 shards in place, so it is the model itself)."""
    return model.module if hasattr(model, "module") else model


def describe(info: DistInfo) -> str:
    """The hardware a run trains on, in words: processes × GPU name, or the CPU model and its threads."""
    if info.device.type == "cuda":
        name = torch.cuda.get_device_name(info.device)
    else:
        name = f"{cpu_model()} ({torch.get_num_threads()} torch threads per process)"
    return f"{info.world_size} process(es) × {name}"

