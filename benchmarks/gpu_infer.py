"""PYTHONPATH=src python benchmarks/gpu_infer.py [--batch 512] [--iters 20] [--warmup 5] [--compile]
[--precision bf16|fp32] [--depth 12] [--json PATH]

Image and text embedding throughput, omnibind vs transformers' SiglipModel (SDPA) vs open_clip's
ViT-B-16-SigLIP, on SigLIP B/16 shapes with the same inputs and batch, in one run. Like for like: every
library holds its weights in the same dtype (--precision: bf16 on a GPU by default, fp32 on a CPU) with no
autocast, and --compile adds a compiled row for every library, each compiled the same way (torch.compile
of each tower module: omnibind's towers, transformers' vision_model and text_model, open_clip's visual and
text, mode "reduce-overhead" on CUDA). omnibind and transformers load one saved random-init checkpoint and
their unit embeddings must agree within --tol before anything is timed (exit status 1 otherwise, as
cpu_inference.py); open_clip builds its own random init of the same architecture (its throughput is
comparable, its outputs are not). open_clip is optional (skipped with a note when it does not import).
`--depth N` keeps N blocks per tower in every library (smoke tests only). Results go to
benchmarks/results/ as JSON with the machine (or --json PATH).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))  # gpu_common and bench_results live beside this script
import bench_results
from gpu_common import environment, median_seconds, random_batch

Embed = Callable[[torch.Tensor], torch.Tensor]
TOLERANCE = {"fp32": 1e-4, "bf16": 3e-2}  # max abs difference of unit embeddings, omnibind vs transformers


def checkpoint(folder: Path, depth: int) -> Path:
    """A random-init transformers SigLIP base-p16-224 (depth blocks per tower) with a tiny tokenizer."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("cpu_inference", Path(__file__).with_name("cpu_inference.py"))
    assert spec is not None and spec.loader is not None
    cpu_inference = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cpu_inference)
    return cpu_inference.make_checkpoint(folder, depth)


def compile_modules(modules: Sequence[torch.nn.Module], device: torch.device) -> None:
    """The one compile recipe every library gets: each tower module compiled in place."""
    for module in modules:
        module.compile(mode="reduce-overhead" if device.type == "cuda" else "default")


def omnibind_embedders(folder: Path, device: torch.device, dtype: torch.dtype, compile_model: bool) -> dict[str, Embed]:
    import omnibind

    model = omnibind.load(folder, device=device, dtype=dtype)
    if compile_model:
        compile_modules(list(model.towers.values()), device)
    return {m: (lambda x, m=m: model.encode(m, x)) for m in ("image", "text")}


def transformers_embedders(folder: Path, device: torch.device, dtype: torch.dtype,
                           compile_model: bool) -> dict[str, Embed]:
    import torch.nn.functional as F
    import transformers

    model = transformers.SiglipModel.from_pretrained(folder, attn_implementation="sdpa", dtype=dtype).to(device).eval()
    if compile_model:
        compile_modules([model.vision_model, model.text_model], device)

    def pooled(out: Any) -> torch.Tensor:
        return F.normalize(out if isinstance(out, torch.Tensor) else out.pooler_output, dim=-1)

    return {"image": lambda x: pooled(model.get_image_features(pixel_values=x)),
            "text": lambda x: pooled(model.get_text_features(input_ids=x))}


def open_clip_model(device: torch.device, depth: int) -> torch.nn.Module:
    """open_clip's ViT-B-16-SigLIP, random init; with depth < 12 its towers keep their first `depth` blocks."""
    import open_clip

    torch.manual_seed(0)
    model = open_clip.create_model("ViT-B-16-SigLIP", device=device)
    if depth != 12:  # smoke tests: the same truncation omnibind and transformers get from the config
        model.visual.trunk.blocks = model.visual.trunk.blocks[:depth]
        model.text.transformer.resblocks = model.text.transformer.resblocks[:depth]
        model.text.transformer.layers = depth
    return model


def open_clip_embedders(device: torch.device, dtype: torch.dtype, compile_model: bool,
                        depth: int) -> dict[str, Embed]:
    model = open_clip_model(device, depth).to(dtype).eval()  # weights in the benchmark's dtype, no autocast
    if compile_model:
        compile_modules([model.visual, model.text], device)
    return {"image": lambda x: model.encode_image(x, normalize=True),
            "text": lambda x: model.encode_text(x, normalize=True)}


def open_clip_available() -> bool:
    try:
        import open_clip  # noqa: F401
    except ImportError:
        return False
    return True


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--compile", action="store_true", help="also time every library with compiled towers")
    parser.add_argument("--precision", choices=("bf16", "fp32"), default=None,
                        help="weights and activations of every library (default bf16 on CUDA, fp32 on CPU)")
    parser.add_argument("--tol", type=float, default=None, help="parity tolerance (default 1e-4 fp32, 3e-2 bf16)")
    parser.add_argument("--libs", default="omnibind,transformers,open_clip")
    parser.add_argument("--depth", type=int, default=12, help="blocks per tower (smoke tests only)")
    parser.add_argument("--json", type=Path, default=None,
                        help="where to write the results (default: a new file under benchmarks/results/)")
    return parser.parse_args(argv)


@torch.inference_mode()
def main(argv: Sequence[str] | None = None, console: Console | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    console = console or Console()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    precision = args.precision or ("bf16" if device.type == "cuda" else "fp32")
    dtype = {"bf16": torch.bfloat16, "fp32": torch.float32}[precision]
    tol = args.tol if args.tol is not None else TOLERANCE[precision]
    wanted = args.libs.split(",")
    console.print(" · ".join(f"{k} {v}" for k, v in environment(device).items()))
    images, ids = random_batch(args.batch, device)
    inputs = {"image": images, "text": ids}
    modes = [False, True] if args.compile else [False]
    libs: dict[str, dict[str, Embed]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = checkpoint(Path(tmp), args.depth)
        for compiled in modes:
            suffix = " (compiled)" if compiled else ""
            libs[f"transformers{suffix}"] = transformers_embedders(folder, device, dtype, compiled)
            libs[f"omnibind{suffix}"] = omnibind_embedders(folder, device, dtype, compiled)
    if "open_clip" in wanted:
        if open_clip_available():
            for compiled in modes:
                libs["open_clip" + (" (compiled)" if compiled else "")] = open_clip_embedders(device, dtype, compiled,
                                                                                             args.depth)
        else:
            console.print("[yellow]open_clip does not import: skipped[/yellow]")
    gap = {m: (libs["omnibind"][m](inputs[m]).float() - libs["transformers"][m](inputs[m]).float()).abs().max().item()
           for m in inputs}
    parity = {"max_abs_diff": gap, "tolerance": tol, "passed": all(g < tol for g in gap.values())}
    console.print(f"omnibind vs transformers, max abs diff of unit embeddings ({precision}, tolerance {tol:.0e}): "
                  f"image {gap['image']:.2e}, text {gap['text']:.2e} → {'ok' if parity['passed'] else 'FAILED'}")
    if not parity["passed"]:
        raise SystemExit("parity check failed: omnibind and transformers disagree, so their timings are not comparable")
    rows = []
    for lib, embed in libs.items():
        for task, x in inputs.items():
            run = lambda embed=embed, task=task, x=x: embed[task](x)  # noqa: E731
            seconds = median_seconds(run, device, args.iters, args.warmup)
            rows.append({"lib": lib, "task": task, "batch": args.batch, "items_per_s": args.batch / seconds})
    base = {(r["task"], "(compiled)" in r["lib"]): r["items_per_s"]
            for r in rows if r["lib"].startswith("transformers")}
    table = Table(title=f"embedding throughput, SigLIP B/16 shapes, {precision} weights, no autocast")
    for column in ("library", "task", "batch", "items/s", "vs transformers (same compile)"):
        table.add_column(column, justify="left" if column in ("library", "task") else "right")
    for r in rows:
        r["vs_transformers"] = r["items_per_s"] / base[(r["task"], "(compiled)" in r["lib"])]
        table.add_row(r["lib"], r["task"], str(r["batch"]), f"{r['items_per_s']:,.0f}", f"{r['vs_transformers']:.2f}×")
    console.print(table)
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "json"}
    results = {"config": {**config, "precision": precision}, "parity": parity, "gap": gap, "rows": rows}
    console.print(f"written: {bench_results.save('gpu_infer', results, args.json)}")
    return results


if __name__ == "__main__":
    main()
