"""PYTHONPATH=src python benchmarks/gpu_infer.py [--batch 512] [--iters 20] [--warmup 5] [--compile]
[--depth 12]

Image and text embedding throughput, omnibind vs transformers' SiglipModel (bf16 weights, SDPA) and
open_clip's ViT-B-16-SigLIP (bf16 autocast), on SigLIP B/16 shapes with the same inputs and batch, in one
run. omnibind and transformers load one saved random-init checkpoint, and their embeddings are compared
before timing. open_clip is optional; on CPU the script runs as a smoke test (fp32).
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from gpu_common import environment, median_seconds, random_batch

Embed = Callable[[torch.Tensor], torch.Tensor]


def checkpoint(folder: Path, depth: int) -> Path:
    """A random-init transformers SigLIP base-p16-224 (depth blocks per tower) with a tiny tokenizer."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("cpu_inference", Path(__file__).with_name("cpu_inference.py"))
    cpu_inference = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cpu_inference)
    return cpu_inference.make_checkpoint(folder, depth)


def omnibind_embedders(folder: Path, device: torch.device, dtype: torch.dtype, compile_model: bool) -> dict[str, Embed]:
    import omnibind

    model = omnibind.load(folder, device=device, dtype=dtype)
    if compile_model:
        for tower in model.towers.values():
            tower.compile(mode="reduce-overhead" if device.type == "cuda" else "default")
    return {m: (lambda x, m=m: model.encode(m, x)) for m in ("image", "text")}


def transformers_embedders(folder: Path, device: torch.device, dtype: torch.dtype) -> dict[str, Embed]:
    import torch.nn.functional as F
    import transformers

    model = transformers.SiglipModel.from_pretrained(folder, attn_implementation="sdpa", dtype=dtype).to(device).eval()

    def pooled(out: Any) -> torch.Tensor:
        return F.normalize(out if isinstance(out, torch.Tensor) else out.pooler_output, dim=-1)

    return {"image": lambda x: pooled(model.get_image_features(pixel_values=x)),
            "text": lambda x: pooled(model.get_text_features(input_ids=x))}


def open_clip_embedders(device: torch.device, dtype: torch.dtype) -> dict[str, Embed]:
    import open_clip

    model = open_clip.create_model("ViT-B-16-SigLIP", device=device).eval()

    def run(fn: Callable[[torch.Tensor], torch.Tensor]) -> Embed:
        def embed(x: torch.Tensor) -> torch.Tensor:
            with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
                return fn(x)
        return embed

    return {"image": run(lambda x: model.encode_image(x, normalize=True)),
            "text": run(lambda x: model.encode_text(x, normalize=True))}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--compile", action="store_true", help="also time omnibind with compiled towers")
    parser.add_argument("--depth", type=int, default=12, help="blocks per tower (smoke tests only)")
    return parser.parse_args(argv)


@torch.inference_mode()
def main(argv: Sequence[str] | None = None, console: Console | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    console = console or Console()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    console.print(" · ".join(f"{k} {v}" for k, v in environment(device).items()))
    images, ids = random_batch(args.batch, device)
    with tempfile.TemporaryDirectory() as tmp:
        folder = checkpoint(Path(tmp), args.depth)
        libs = {"transformers": transformers_embedders(folder, device, dtype),
                "omnibind": omnibind_embedders(folder, device, dtype, False)}
        if args.compile:
            libs["omnibind (compiled)"] = omnibind_embedders(folder, device, dtype, True)
    try:
        if args.depth == 12:
            libs["open_clip"] = open_clip_embedders(device, dtype)
    except ImportError:
        console.print("[yellow]open_clip is not installed: skipped[/yellow]")
    inputs = {"image": images, "text": ids}
    gap = {m: (libs["omnibind"][m](inputs[m]).float() - libs["transformers"][m](inputs[m]).float()).abs().max().item()
           for m in inputs}
    console.print(f"omnibind vs transformers, max abs diff of unit embeddings: image {gap['image']:.2e}, "
                  f"text {gap['text']:.2e}")
    rows = []
    for lib, embed in libs.items():
        for task, x in inputs.items():
            run = lambda embed=embed, task=task, x=x: embed[task](x)  # noqa: E731
            seconds = median_seconds(run, device, args.iters, args.warmup)
            rows.append({"lib": lib, "task": task, "batch": args.batch, "items_per_s": args.batch / seconds})
    base = {r["task"]: r["items_per_s"] for r in rows if r["lib"] == "transformers"}
    table = Table(title=f"embedding throughput, SigLIP B/16 shapes, {str(dtype).split('.')[-1]}")
    for column in ("library", "task", "batch", "items/s", "vs transformers"):
        table.add_column(column, justify="left" if column in ("library", "task") else "right")
    for r in rows:
        r["vs_transformers"] = r["items_per_s"] / base[r["task"]]
        table.add_row(r["lib"], r["task"], str(r["batch"]), f"{r['items_per_s']:,.0f}", f"{r['vs_transformers']:.2f}×")
    console.print(table)
    return {"gap": gap, "rows": rows}


if __name__ == "__main__":
    main()
