"""PYTHONPATH=src python benchmarks/gpu_train.py [--batch 512] [--find-max]
[--modes eager,compile-towers,compile-whole] [--libs omnibind,omnibind-trainer,open_clip] [--steps 20]
[--warmup 5] [--depth 12] [--json PATH]

Training throughput of omnibind vs open_clip on SigLIP B/16 image–text shapes (224 px, patch 16, text
length 64, vocab 32k), random init, synthetic tensors (no data loading), bf16 autocast, fused AdamW,
sigmoid loss, in one run on one GPU. Prints pairs/s, step time, achieved TFLOP/s and MFU against a
measured bf16 matmul, and peak memory. `--find-max` doubles the batch until it no longer fits.

Like for like: `omnibind` and `open_clip` time the same plain step (forward under autocast, sigmoid loss
in fp32, backward, AdamW step; no clipping, no schedule), and each compile style is applied to both alike:
`compile-towers` compiles each tower module (omnibind's towers, what `train.compile: true` does; open_clip's
visual and text), `compile-whole` compiles the whole model's forward. `omnibind-trainer` times the step
`omnibind train` really runs (omnibind.train.step.Stepper: the registered sigmoid objective, gradient
clipping at 1, the warmup + cosine schedule, AdamW with the trainer's parameter groups) in eager and
compile-towers modes (the trainer has no whole-model compile); in one process the all-reduce of the t' and
b gradients is skipped (there is no process group), so it is not part of any figure here.
open_clip is optional (skipped with a note when it does not import); `--depth N` keeps N blocks per tower in
every library (smoke tests only). Results go to benchmarks/results/ as JSON with the machine (or --json PATH).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))  # gpu_common and bench_results live beside this script
import bench_results
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
MODES = ("eager", "compile-towers", "compile-whole")


def omnibind_model(depth: int, device: torch.device) -> torch.nn.Module:
    import omnibind

    torch.manual_seed(0)
    return omnibind.create("B/16", ("image", "text"), image={"depth": depth},
                           text={"depth": depth, "vocab_size": VOCAB, "max_len": TEXT_LEN}).to(device).train()


def omnibind_step(depth: int, mode: str, device: torch.device, dtype: torch.dtype) -> Step:
    """The plain omnibind step: towers under autocast, sigmoid loss in fp32, backward, fused AdamW."""
    from omnibind.losses import MultiPairLoss
    from omnibind.train.optim import param_groups

    model = omnibind_model(depth, device)
    forward = torch.compile(model) if mode == "compile-whole" else model
    if mode == "compile-towers":
        for tower in model.towers.values():
            tower.compile()
    optimizer = torch.optim.AdamW(param_groups(model, 1e-4), lr=1e-4, fused=device.type == "cuda")
    loss_fn = MultiPairLoss([("image", "text")])

    def step(images: torch.Tensor, ids: torch.Tensor) -> None:
        with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
            emb = forward({"image": images, "text": ids})
        masks = {m: torch.ones(len(images), dtype=torch.bool, device=device) for m in emb}
        loss, _ = loss_fn(emb, masks, model.logit_scale, model.logit_bias)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def omnibind_trainer_step(depth: int, mode: str, device: torch.device, dtype: torch.dtype) -> Step:
    """The step `omnibind train` runs: Stepper with the sigmoid objective, clipping, schedule and AdamW."""
    from omnibind.objectives import ObjectiveSetup, build_objective
    from omnibind.train.config import OptimSection
    from omnibind.train.optim import make_optimizer, make_schedule
    from omnibind.train.step import Stepper

    if mode == "compile-whole":
        raise ValueError("the trainer compiles towers (train.compile: true), not the whole model")
    model = omnibind_model(depth, device)
    if mode == "compile-towers":
        for tower in model.towers.values():
            tower.compile()
    optim = OptimSection(lr=1e-4, weight_decay=1e-4, warmup_steps=10, grad_clip=1.0)
    optimizer = make_optimizer(model, optim, device)
    scheduler = make_schedule(optimizer, optim, total_steps=1_000_000)
    objective = build_objective("sigmoid", ObjectiveSetup((("image", "text"),)))
    stepper = Stepper(model, objective, optimizer, scheduler, device, "bf16" if dtype == torch.bfloat16 else "fp32",
                      accum_steps=1, grad_clip=optim.grad_clip)

    def step(images: torch.Tensor, ids: torch.Tensor) -> None:
        stepper({"image": images, "text": ids})

    return step


def open_clip_step(depth: int, mode: str, device: torch.device, dtype: torch.dtype) -> Step:
    """open_clip's ViT-B-16-SigLIP with its SigLipLoss, the same optimiser settings and the same plain step."""
    import open_clip

    torch.manual_seed(0)
    model = open_clip.create_model("ViT-B-16-SigLIP", device=device)
    if depth != 12:  # smoke tests: keep the first `depth` blocks per tower, as omnibind's config does
        model.visual.trunk.blocks = model.visual.trunk.blocks[:depth]
        model.text.transformer.resblocks = model.text.transformer.resblocks[:depth]
        model.text.transformer.layers = depth
    model.train()
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embedding" not in n]
    rest = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embedding" not in n)]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 1e-4}, {"params": rest, "weight_decay": 0.0}],
                                  lr=1e-4, fused=device.type == "cuda")
    loss_fn = open_clip.loss.SigLipLoss()
    forward = torch.compile(model) if mode == "compile-whole" else model
    if mode == "compile-towers":
        model.visual.compile()
        model.text.compile()

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


BUILDERS = {"omnibind": omnibind_step, "omnibind-trainer": omnibind_trainer_step, "open_clip": open_clip_step}


def measure(lib: str, mode: str, batch: int, args: argparse.Namespace, device: torch.device,
            dtype: torch.dtype) -> dict[str, Any]:
    """pairs/s, step time, FLOPs per pair and peak memory of one library at one batch size."""
    free(device)
    step = BUILDERS[lib](args.depth, mode, device, dtype)
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
            step = BUILDERS[lib](args.depth, "eager", device, dtype)
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
    parser.add_argument("--modes", default=",".join(MODES), help=f"some of {', '.join(MODES)}")
    parser.add_argument("--libs", default=",".join(BUILDERS), help=f"some of {', '.join(BUILDERS)}")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--depth", type=int, default=12, help="omnibind blocks per tower (smoke tests only)")
    parser.add_argument("--precision", choices=("bf16", "fp32"), default="bf16")
    parser.add_argument("--json", type=Path, default=None,
                        help="where to write the results (default: a new file under benchmarks/results/)")
    args = parser.parse_args(argv)
    for mode in args.modes.split(","):
        if mode not in MODES:
            parser.error(f"--modes: {mode!r} is not one of {', '.join(MODES)}")
    for lib in args.libs.split(","):
        if lib not in BUILDERS:
            parser.error(f"--libs: {lib!r} is not one of {', '.join(BUILDERS)}")
    return args


def available(lib: str) -> bool:
    """omnibind always; open_clip when it imports."""
    try:
        __import__("open_clip" if lib == "open_clip" else "omnibind")
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
                if not (lib == "omnibind-trainer" and mode == "compile-whole"):  # not a trainer option
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
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "json"}
    results = {"environment": env, "config": config, "peak_matmul_tflops": peak, "rows": rows}
    console.print(f"written: {bench_results.save('gpu_train', results, args.json)}")
    return results


if __name__ == "__main__":
    main()
