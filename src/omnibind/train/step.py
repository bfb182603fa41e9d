"""One optimisation step: forward, objective, backward (optionally with exact gradient caching over
micro-batches), gradient averaging of t' and b, clipping, optimiser and schedule."""

from __future__ import annotations

import contextlib
from typing import Any

import torch
from torch import nn

from omnibind.errors import InputError
from omnibind.objectives import Objective
from omnibind.train import distributed


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """bf16 autocast when asked for (the loss itself always runs in fp32), else nothing."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def split(batch: dict[str, torch.Tensor], parts: int) -> list[dict[str, torch.Tensor]]:
    """Cut a batch dict into `parts` equal micro-batches along the batch dimension."""
    chunks = {k: v.chunk(parts) for k, v in batch.items()}
    return [{k: v[i] for k, v in chunks.items()} for i in range(parts)]


def check_accumulation(objective: Objective, accum_steps: int) -> None:
    """Refuse accumulation over micro-batches (exact gradient caching) for an objective that does not allow it."""
    if accum_steps > 1 and not objective.supports_grad_cache:
        needs = f" (it reads the token sequences of {', '.join(objective.token_modalities)})" \
            if objective.token_modalities else ""
        raise InputError("train.accum_steps", f"{accum_steps} needs exact gradient caching, which the objective "
                         f"{objective.name!r} does not support{needs}",
                         "1 with this objective (fit the batch in memory, or lower data.batch_size)")


class Stepper:
    """Runs training steps for a wrapped model; keeps no host syncs in the step (metrics stay tensors)."""

    def __init__(self, wrapped: nn.Module, objective: Objective, optimizer: torch.optim.Optimizer, scheduler: Any,
                 device: torch.device, precision: str = "fp32", accum_steps: int = 1,
                 grad_clip: float | None = None, outside: tuple[str, ...] = ()) -> None:
        check_accumulation(objective, accum_steps)
        self.outside = outside  # the objective's modules, run after the wrapped forward: reduced here
        self.wrapped, self.model = wrapped, distributed.unwrap(wrapped)
        self.objective, self.optimizer, self.scheduler = objective, optimizer, scheduler
        self.device, self.precision, self.accum_steps, self.grad_clip = device, precision, accum_steps, grad_clip
        self.trainable = [p for p in self.model.parameters() if p.requires_grad]

    def tower_inputs(self, batch: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Device copies of the tower inputs and the "<m>_mask" masks (all-true where a batch carries none)."""
        inputs, masks = {}, {}
        for m in self.model.modalities:
            if m in batch:
                inputs[m] = batch[m].to(self.device, non_blocking=True)
                mask = batch.get(f"{m}_mask")
                mask = torch.ones(len(batch[m]), dtype=torch.bool) if mask is None else mask
                masks[f"{m}_mask"] = mask.to(self.device)
        return inputs, masks

    def __call__(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        inputs, masks = self.tower_inputs(batch)
        if self.accum_steps == 1:
            extra = {k: v.to(self.device) for k, v in self.objective.prepare(batch).items()}
            with autocast(self.device, self.precision):
                outputs = self.wrapped(inputs, tokens=self.objective.token_modalities)
            loss, parts = self.objective(outputs, {**inputs, **masks, **extra}, self.model)
            loss.backward()
        else:
            loss, parts = self._cached_gradients(inputs, masks)
        distributed.average_loss_scalar_grads(self.model)
        distributed.average_outside_grads(self.model, self.outside)
        norm = self._clip()
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        metrics = {"loss": loss.detach(), "grad_norm": norm}
        metrics.update({f"loss/{k}": v.detach() for k, v in parts.items()})
        return metrics

    def _cached_gradients(self, inputs: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]):
        """Exact accumulation for an objective of the pooled embeddings (gradient caching): embed all
        micro-batches without a graph, take the loss on the whole batch, then backpropagate its embedding
        gradients chunk by chunk. Memory is that of one micro-batch; the gradients equal the full-batch ones."""
        chunks = split(inputs, self.accum_steps)
        with torch.no_grad(), autocast(self.device, self.precision):
            pieces = [self.wrapped(chunk) for chunk in chunks]
        emb = {m: torch.cat([p[m] for p in pieces]).float().requires_grad_() for m in inputs}
        loss, parts = self.objective(emb, {**inputs, **masks}, self.model)
        loss.backward()
        grads = {m: e.grad.chunk(self.accum_steps) for m, e in emb.items() if e.grad is not None}
        for i, chunk in enumerate(chunks):
            last = i == len(chunks) - 1
            sync = contextlib.nullcontext() if last or not hasattr(self.wrapped, "no_sync") else self.wrapped.no_sync()
            with sync:
                with autocast(self.device, self.precision):
                    out = self.wrapped(chunk)
                surrogate = sum((out[m].float() * grads[m][i]).sum() for m in out if m in grads)
                surrogate.backward()
        return loss, parts

    def _clip(self) -> torch.Tensor:
        """Global gradient norm (before clipping), clipped to grad_clip when set."""
        limit = self.grad_clip if self.grad_clip else float("inf")
        return torch.nn.utils.clip_grad_norm_(self.trainable, limit, foreach=True)
