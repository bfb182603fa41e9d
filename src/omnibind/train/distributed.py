"""torch.distributed set-up for torchrun (gloo on CPU, NCCL on GPU), model wrapping (DDP / FSDP2) and
the all-reduce of the loss scalars t' and b, which stay outside the wrappers."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

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


def wrap(model: nn.Module, strategy: str, info: DistInfo) -> nn.Module:
    """DDP or FSDP2 around the towers for several processes; the bare model for one."""
    if not info.distributed:
        return model
    if strategy == "fsdp":
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
    ignored = [f"{prefix}{name}" for name in LOSS_SCALARS for prefix in ("", ".")]
    DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(model, ignored)
    device_ids = [info.device.index] if info.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids)


def average_loss_scalar_grads(model: nn.Module) -> None:
    """All-reduce (mean) the gradients of t' and b, which no wrapper reduces."""
    if not dist.is_initialized():
        return
    for name in LOSS_SCALARS:
        param = getattr(model, name)
        if param.grad is not None:
            dist.all_reduce(param.grad)  # a sum: gloo has no AVG, so divide for every backend alike
            param.grad /= dist.get_world_size()


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

