"""PYTHONPATH=src python benchmarks/gpu_train.py [--batch 512] [--find-max] [--modes eager,compile]
[--libs omnibind,open_clip] [--steps 20] [--warmup 5] [--depth 12]

Training throughput of omnibind vs open_clip on SigLIP B/16 image–text shapes (224 px, patch 16, text
length 64, vocab 32k), random init, synthetic tensors (no data loading), bf16 autocast, fused AdamW,
sigmoid loss, in one run on one GPU. Prints pairs/s, step time, achieved TFLOP/s and MFU against a
measured bf16 matmul, and peak memory. `--find-max` doubles the batch until it no longer fits.
open_clip is optional (skipped with a note when absent); on CPU the script runs as a smoke test.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from gpu_common import (
    TEXT_LEN,
    VOCAB,
    count_flops,
    environment,
    free,
    median_seconds,
    peak_gib,
    peak_matmul_tflops,
    random_batch,
)

Step = Callable[[torch.Tensor, torch.Tensor], None]


def omnibind_step(depth: int, compile_model: bool, device: torch.device, dtype: torch.dtype) -> Step:
    """One omnibind training step: towers under autocast, sigmoid loss in fp32, fused AdamW."""
    import omnibind
    from omnibind.losses import MultiPairLoss
    from omnibind.train.optim import param_groups

    torch.manual_seed(0)
    model = omnibind.create("B/16", ("image", "text"), image={"depth": depth},
                            text={"depth": depth, "vocab_size": VOCAB, "max_len": TEXT_LEN}).to(device).train()
    if compile_model:
        for tower in model.towers.values():
            tower.compile()
    optimizer = torch.optim.AdamW(param_groups(model, 1e-4), lr=1e-4, fused=device.type == "cuda")
    loss_fn = MultiPairLoss([("image", "text")])

    def step(images: torch.Tensor, ids: torch.Tensor) -> None:
        with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
            emb = model({"image": images, "text": ids})
        masks = {m: torch.ones(len(images), dtype=torch.bool, device=device) for m in emb}
        loss, _ = loss_fn(emb, masks, model.logit_scale, model.logit_bias)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def open_clip_step(depth: int, compile_model: bool, device: torch.device, dtype: torch.dtype) -> Step:
    """open_clip's ViT-B-16-SigLIP with its SigLipLoss, the same optimiser settings."""
    import open_clip

    torch.manual_seed(0)
    model = open_clip.create_model("ViT-B-16-SigLIP", device=device)
    if depth != 12:
        raise SystemExit("--depth applies to omnibind only; open_clip runs the full B/16")
    model.train()
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embedding" not in n]
    rest = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embedding" not in n)]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 1e-4}, {"params": rest, "weight_decay": 0.0}],
                                  lr=1e-4, fused=device.type == "cuda")
    loss_fn = open_clip.loss.SigLipLoss()
    forward = torch.compile(model) if compile_model else model

    def step(images: torch.Tensor, ids: torch.Tensor) -> None:
        with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
            out = forward(images, ids)
        if isinstance(out, dict):
            out = (out["image_features"], out["text_features"], out["logit_scale"], out["logit_bias"])
        image, text, scale, bias = out
        loss = loss_fn(image.float(), text.float(), scale.float(), bias.float())
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


BUILDERS = {"omnibind": omnibind_step, "open_clip": open_clip_step}


def measure(lib: str, mode: str, batch: int, args: argparse.Namespace, device: torch.device,
            dtype: torch.dtype) -> dict[str, Any]:
    """pairs/s, step time, FLOPs per pair and peak memory of one library at one batch size."""
    free(device)
    step = BUILDERS[lib](args.depth, mode == "compile", device, dtype)
    images, ids = random_batch(batch, device)
    seconds = median_seconds(lambda: step(images, ids), device, args.steps, args.warmup)
    flops = count_flops(lambda: step(images, ids)) if mode == "eager" else None
    return {"lib": lib, "mode": mode, "batch": batch, "step_s": seconds, "pairs_per_s": batch / seconds,
            "flops_per_pair": flops / batch if flops else None, "peak_gib": peak_gib(device)}


def largest_batch(lib: str, args: argparse.Namespace, device: torch.device, dtype: torch.dtype) -> int:
    """The largest power-of-two multiple of --batch that trains one step without running out of memory."""
    batch, best = args.batch, 0
    while batch <= args.max_batch:
        try:
            free(device)
            step = BUILDERS[lib](args.depth, False, device, dtype)
            images, ids = random_batch(batch, device)
            step(images, ids)
            best, batch = batch, batch * 2
        except torch.OutOfMemoryError:
            break
        finally:
            step = images = ids = None
    return best


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--find-max", action="store_true", help="also measure at the largest batch that fits")
    parser.add_argument("--max-batch", type=int, default=16384)
    parser.add_argument("--modes", default="eager,compile")
    parser.add_argument("--libs", default="omnibind,open_clip")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--depth", type=int, default=12, help="omnibind blocks per tower (smoke tests only)")
    parser.add_argument("--precision", choices=("bf16", "fp32"), default="bf16")
    return parser.parse_args(argv)


def available(lib: str) -> bool:
    """omnibind always; open_clip when it imports."""
    try:
        __import__("omnibind" if lib == "omnibind" else "open_clip")
        return True
    except ImportError:
        return False


def main(argv: Sequence[str] | None = None, console: Console | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    console = console or Console()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if args.precision == "bf16" else torch.float32
    env = environment(device)
    libs = [lib for lib in args.libs.split(",") if available(lib)]
    for lib in set(args.libs.split(",")) - set(libs):
        console.print(f"[yellow]{lib} is not installed: skipped[/yellow]")
    peak = peak_matmul_tflops(device, dtype, size=8192 if device.type == "cuda" else 512, iters=10)
    header = " · ".join(f"{k} {v}" for k, v in env.items())
    console.print(f"{header} · measured {args.precision} matmul {peak:.1f} TFLOP/s")
    rows = []
    for lib in libs:
        batches = [args.batch] + ([largest_batch(lib, args, device, dtype)] if args.find_max else [])
        for batch in dict.fromkeys(b for b in batches if b):
            for mode in args.modes.split(","):
                rows.append(measure(lib, mode, batch, args, device, dtype))
    flops = {(r["lib"], r["batch"]): r["flops_per_pair"] for r in rows if r["flops_per_pair"]}
    table = Table(title=f"training step, SigLIP B/16 shapes, {args.precision} autocast, fused AdamW")
    for column in ("library", "mode", "batch", "pairs/s", "step ms", "GFLOP/pair", "TFLOP/s", "MFU", "peak GiB"):
        table.add_column(column, justify="left" if column in ("library", "mode") else "right")
    for r in rows:
        per_pair = flops.get((r["lib"], r["batch"]))
        tflops = per_pair * r["pairs_per_s"] / 1e12 if per_pair else None
        r.update(tflops=tflops, mfu=tflops / peak if tflops else None)
        table.add_row(r["lib"], r["mode"], str(r["batch"]), f"{r['pairs_per_s']:,.0f}", f"{1000 * r['step_s']:.1f}",
                      f"{per_pair / 1e9:.1f}" if per_pair else "–", f"{tflops:.1f}" if tflops else "–",
                      f"{100 * r['mfu']:.1f}%" if r["mfu"] else "–", f"{r['peak_gib']:.1f}")
    console.print(table)
    return {"environment": env, "peak_matmul_tflops": peak, "rows": rows}


if __name__ == "__main__":
    main()
