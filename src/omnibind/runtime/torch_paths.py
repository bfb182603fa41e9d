"""The PyTorch inference paths: a tower's forward in bf16 weights, with dynamically quantized int8 linears (weights
per output channel), or as it is (fp32); optionally under torch.compile. Each returns a callable from a
preprocessed batch to features.

The bf16 path runs its linear layers through oneDNN with weights reordered once into its blocked layout and the
bias (and an MLP's GELU, and a block's residual add) fused into the matmul: eager `F.linear` in bf16 reorders
nothing ahead, writes the bias into the output before the matmul (a full extra pass over every activation),
and the tanh GELU and the residual adds are separate passes; on a SigLIP-B image tower at batch 8 that was
about a fifth of its time (torch.profiler)."""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable
from itertools import pairwise
from typing import TypeGuard, cast

import torch
import torch.nn.functional as F
from torch import nn

from omnibind.models.transformer import MLP, Attention, Block, Encoder
from omnibind.runtime.spec import RuntimeSpec

TowerCall = Callable[[torch.Tensor], torch.Tensor]
QUANTIZE_DYNAMIC: Callable[..., nn.Module] = torch.ao.quantization.quantize_dynamic
PACK_ROWS = 1568  # the row count oneDNN picks the weights' layout for (batch 8 × 196 patches); any count runs
# A layer that does not widen its input (an attention's output projection, an MLP's second linear) also keeps
# the layout oneDNN picks for one row, used below SMALL_ROWS rows. With AMX (2 threads, benchmarks/packed_layouts.py)
# the PACK_ROWS layout ran both such layers at 512 to 1,024 rows (8 to 16 texts, 3 to 5 pictures) in 1.5–1.8× the
# time of the one-row layout, which is slower from 1,568 rows on (at 392 and 1,176 rows the two layers disagree);
# widening layers were as fast or faster (within 3%) in the PACK_ROWS layout at every row count tried. On an AMD
# EPYC without AMX, packing for 512 instead of 1,568 rows made no difference to the towers.
SMALL_PACK_ROWS = 1
SMALL_ROWS = 1500
# A packed encoder runs its blocks on chunks of items whose widest activation (the MLP's hidden layer) stays under
# this size: glibc maps a buffer of tens of MB afresh on every allocation, so the kernel zeroes its pages on every
# call (a 37 MB bf16 buffer took about 12 times as long to allocate and fill as to refill), and a batch of 32
# pictures (a 38 MB hidden layer) ran about a fifth faster in three chunks on the Intel Xeon with AMX.
CHUNK_BYTES = 16 * 2**20


def packed_linears_supported() -> bool:
    """True when this torch has oneDNN's prepacked linear (the op inductor's freezing uses) and bf16 in it."""
    ops = torch.ops.mkldnn
    return (torch._C._has_mkldnn and hasattr(ops, "_linear_pointwise")
            and hasattr(ops, "_reorder_linear_weight") and bool(ops._is_mkldnn_bf16_supported()))


class PackedLinear(nn.Module):
    """An nn.Linear's bf16 weight reordered once into oneDNN's layout, its bias and an optional activation
    (oneDNN post-op) fused into the matmul; `weight` and `bias` still name the tower's own tensors."""

    def __init__(self, linear: nn.Linear, activation: str = "none", algorithm: str = "") -> None:
        super().__init__()
        self.weight = linear.weight  # the tower's parameter, shared: read by code that asks a layer its dtype
        self.bias = linear.bias
        self.in_features, self.out_features = linear.in_features, linear.out_features
        weight = linear.weight.detach()
        self.packed = torch.ops.mkldnn._reorder_linear_weight(weight, PACK_ROWS)
        self.packed_small = (torch.ops.mkldnn._reorder_linear_weight(weight, SMALL_PACK_ROWS)
                             if self.in_features >= self.out_features else None)  # not widening
        self.activation, self.algorithm = activation, algorithm

    def layout_for(self, x: torch.Tensor) -> torch.Tensor:
        """The packed weight for `x`'s row count: the small-batch layout where this layer keeps one and `x` has
        fewer than SMALL_ROWS rows, else the PACK_ROWS layout."""
        small: torch.Tensor | None = self.packed_small
        if small is not None and x.numel() < SMALL_ROWS * self.in_features:
            return small
        large: torch.Tensor = self.packed
        return large

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        """The layer's output, plus `residual` (same shape as the output) where given: then the sum is a
        oneDNN post-op of the matmul, not a separate pass."""
        if x.dtype != self.packed.dtype:  # not what the bf16 path feeds it: the layer as it was
            y = F.linear(x, self.weight, self.bias)
            y = y if self.activation == "none" else F.gelu(y, approximate=self.algorithm or "none")
            return y if residual is None else residual + y
        bias = None if self.bias is None else self.bias.detach()
        packed = self.layout_for(x)
        if residual is not None and self.activation == "none" and residual.dtype == x.dtype \
                and residual.is_contiguous() and residual.shape[:-1] == x.shape[:-1]:
            summed: torch.Tensor = torch.ops.mkldnn._linear_pointwise.binary(x, residual, packed, bias, "add")
            return summed
        out: torch.Tensor = torch.ops.mkldnn._linear_pointwise(x, packed, bias, self.activation, [], self.algorithm)
        return out if residual is None else residual + out


class PackedMLP(nn.Module):
    """omnibind's MLP with the tanh GELU fused into the first packed linear."""

    def __init__(self, mlp: MLP) -> None:
        super().__init__()
        self.fc1 = PackedLinear(mlp.fc1, "gelu", "tanh")
        self.fc2 = PackedLinear(mlp.fc2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.fc2(self.fc1(x))
        return out


class PackedBlock(nn.Module):
    """omnibind's pre-LN Block on packed linears, the two residual adds fused into the attention's output
    projection and the MLP's second linear (the same sums as `Block.forward`)."""

    def __init__(self, block: Block) -> None:
        super().__init__()
        self.ln1, self.ln2, self.heads = block.ln1, block.ln2, block.attn.heads
        self.qkv, self.out = PackedLinear(block.attn.qkv), PackedLinear(block.attn.out)
        self.fc1, self.fc2 = PackedLinear(block.mlp.fc1, "gelu", "tanh"), PackedLinear(block.mlp.fc2)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        b, n, d = x.shape
        qkv = self.qkv(self.ln1(x)).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask).transpose(1, 2).reshape(b, n, d)
        x = self.out(y, residual=x)
        out: torch.Tensor = self.fc2(self.fc1(self.ln2(x)), residual=x)
        return out


class PackedEncoder(nn.Module):
    """omnibind's Encoder on PackedBlocks, run on chunks of items (`item_chunks`) and the chunks' outputs joined
    before the final LayerNorm; the same per-item sums as `Encoder.forward` (items do not interact)."""

    def __init__(self, encoder: Encoder) -> None:
        super().__init__()
        packed = [PackedBlock(cast(Block, block)) for block in encoder.blocks]  # `_packable_encoder` checked them
        self.blocks = nn.ModuleList(packed)
        self.norm = encoder.norm
        self.widest: int = max(block.fc1.out_features for block in packed)

    def item_chunks(self, x: torch.Tensor) -> list[slice]:
        """The fewest slices of the batch (sizes differing by one at most) for which each slice's MLP hidden
        activation stays under CHUNK_BYTES, at least one item each (one slice where the whole batch fits)."""
        items, tokens = x.shape[0], x.shape[1]
        per_item = tokens * self.widest * x.element_size()
        count = max(1, min(items, -(-items * per_item // CHUNK_BYTES)))  # one (empty) slice for no items
        size, extra = divmod(items, count)  # the first `extra` chunks take one item more
        bounds = [i * size + min(i, extra) for i in range(count + 1)]
        return [slice(start, stop) for start, stop in pairwise(bounds)]

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        outputs = []
        for part in self.item_chunks(x):
            y = x[part]
            part_mask = mask if mask is None or mask.shape[0] == 1 else mask[part]
            for block in self.blocks:
                y = block(y, part_mask)
            outputs.append(y)
        out: torch.Tensor = self.norm(outputs[0] if len(outputs) == 1 else torch.cat(outputs))
        return out


def _packable_encoder(module: nn.Module) -> TypeGuard[Encoder]:
    """True for omnibind's own Encoder (not a subclass) with at least one block, every one `_packable`."""
    return type(module) is Encoder and len(module.blocks) > 0 and all(_packable(block) for block in module.blocks)


def _packable(block: nn.Module) -> TypeGuard[Block]:
    """True for omnibind's own Block (not a subclass) on its own Attention and MLP, every linear plain bf16."""
    return type(block) is Block and type(block.attn) is Attention and type(block.mlp) is MLP \
        and _plain_bf16(block.attn.qkv, block.attn.out, block.mlp.fc1, block.mlp.fc2)


def _plain_bf16(*layers: nn.Module) -> bool:
    """True when every layer is an nn.Linear itself (not a subclass) with bf16 weights."""
    return all(type(layer) is nn.Linear and layer.weight.dtype == torch.bfloat16 for layer in layers)


def packed_copy(tower: nn.Module) -> nn.Module:
    """A copy of the (bf16) tower that shares every parameter and buffer with it, with omnibind's Encoders
    replaced by PackedEncoder (PackedBlocks run on chunks of items), other Blocks by PackedBlock, its other MLPs
    by PackedMLP and other bf16 nn.Linear layers by PackedLinear; the tower itself is left as it is (its state
    dict and fingerprint), and only the packed weights are new memory."""
    shared: dict[int, object] = {id(t): t for t in (*tower.parameters(), *tower.buffers())}
    fast = copy.deepcopy(tower, shared)

    def replace(module: nn.Module) -> None:
        for name, child in module.named_children():
            if _packable_encoder(child):
                setattr(module, name, PackedEncoder(child))
            elif _packable(child):
                setattr(module, name, PackedBlock(child))
            elif type(child) is MLP and _plain_bf16(child.fc1, child.fc2):
                setattr(module, name, PackedMLP(child))
            elif type(child) is nn.Linear and child.weight.dtype == torch.bfloat16:
                setattr(module, name, PackedLinear(child))
            else:
                replace(child)

    replace(fast)
    return fast.eval()


def to_bf16(tower: nn.Module, spec: RuntimeSpec) -> TowerCall:
    """Cast the tower's weights to bf16 in place (the fp32 copy is not kept; the index's weight fingerprint is
    taken in bf16, so it is unchanged) and feed it bf16 inputs; where oneDNN runs bf16, through a copy whose
    linear layers are prepacked with bias and GELU fused (`packed_copy`: weights in bf16 twice, plus a second
    layout of the layers that do not widen their input: about 1.2× the fp32 tower's size in all). Not for
    torch.compile, which cannot trace oneDNN's packed tensors: it gets the plain bf16 tower."""
    tower.to(torch.bfloat16)
    fast = tower
    if not spec.compile and packed_linears_supported():
        try:
            with torch.no_grad():
                fast = packed_copy(tower)
        except (RuntimeError, TypeError, copy.Error):  # a tower that will not copy, or a layer oneDNN refuses
            fast = tower

    def forward(x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = fast(x.to(torch.bfloat16) if x.is_floating_point() else x)
        return out

    return forward


def to_int8(tower: nn.Module, spec: RuntimeSpec) -> TowerCall:
    """A copy of the tower whose nn.Linear layers hold int8 weights and quantize their inputs per batch
    (dynamic quantization); the fp32 tower stays as it is (the index fingerprints it). Weights get one scale per
    output channel (rows of a trained layer differ in range; one scale for all rounds the small ones coarsely),
    or with `spec.per_tensor` one per tensor, the scheme older indexes were built with."""
    qconfig = (torch.ao.quantization.default_dynamic_qconfig if spec.per_tensor
               else torch.ao.quantization.per_channel_dynamic_qconfig)
    with warnings.catch_warnings():  # torch.ao's note that eager quantization moves to torchao
        warnings.simplefilter("ignore")
        quantized = QUANTIZE_DYNAMIC(copy.deepcopy(tower).float(), {nn.Linear: qconfig}, dtype=torch.qint8)
    quantized.eval()

    def forward(x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = quantized(x.float() if x.is_floating_point() else x)
        return out

    return forward


def to_fp32(tower: nn.Module, spec: RuntimeSpec) -> TowerCall:
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


# Each takes the tower and the whole path (whether its call will run under torch.compile, int8's weight scheme).
TORCH_BUILDERS: dict[str, Callable[[nn.Module, RuntimeSpec], TowerCall]] = {"fp32": to_fp32, "bf16": to_bf16,
                                                                            "int8": to_int8}
