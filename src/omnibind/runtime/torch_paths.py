"""The PyTorch inference paths: a tower's forward in bf16 weights, with dynamically quantized int8 linears, or
as it is (fp32); optionally under torch.compile. Each returns a callable from a preprocessed batch to features."""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable

import torch
from torch import nn

TowerCall = Callable[[torch.Tensor], torch.Tensor]
QUANTIZE_DYNAMIC: Callable[..., nn.Module] = torch.ao.quantization.quantize_dynamic


def to_bf16(tower: nn.Module) -> TowerCall:
    """Cast the tower's weights to bf16 in place (halving its memory: the fp32 copy is not kept; the index's
    weight fingerprint is taken in bf16, so it is unchanged) and feed it bf16 inputs."""
    tower.to(torch.bfloat16)

    def forward(x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = tower(x.to(torch.bfloat16) if x.is_floating_point() else x)
        return out

    return forward


def to_int8(tower: nn.Module) -> TowerCall:
    """A copy of the tower whose nn.Linear layers hold int8 weights and quantize their inputs per batch
    (dynamic quantization); the fp32 tower stays as it is (the index fingerprints it)."""
    with warnings.catch_warnings():  # torch.ao's note that eager quantization moves to torchao
        warnings.simplefilter("ignore")
        quantized = QUANTIZE_DYNAMIC(copy.deepcopy(tower).float(), {nn.Linear}, dtype=torch.qint8)
    quantized.eval()

    def forward(x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = quantized(x.float() if x.is_floating_point() else x)
        return out

    return forward


def to_fp32(tower: nn.Module) -> TowerCall:
    """The tower in float32 (as omnibind.load gives it; cast in place otherwise): the reference path."""
    tower.float()

    def forward(x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = tower(x.float() if x.is_floating_point() else x)
        return out

    return forward


def compiled(call: TowerCall) -> TowerCall:
    """`call` under torch.compile with dynamic batch sizes (the first batch of each new shape pays the compile;
    later ones reuse it); inference only, so the graph is traced without autograd."""
    fast = torch.compile(call, dynamic=True)

    def forward(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return fast(x)

    return forward


TORCH_BUILDERS: dict[str, Callable[[nn.Module], TowerCall]] = {"fp32": to_fp32, "bf16": to_bf16, "int8": to_int8}
