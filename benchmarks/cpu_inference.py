"""PYTHONPATH=src python benchmarks/cpu_inference.py [--paths fp32,bf16,int8,onnx,onnx-int8,bf16+compile]
[--batch 8] [--iters 10] [--warmup 1] [--threads N] [--depth 12] [--json results.json]

CPU inference throughput of omnibind's inference paths (`--runtime`) against transformers on SigLIP
base-patch16-224 shapes (width 768, MLP 3072, 12 heads, 224 px images in 16 px patches, 64-token texts,
32000-token vocabulary), under torch.inference_mode. One random-init transformers SiglipModel is saved with
save_pretrained; transformers loads it back with `SiglipModel.from_pretrained(folder, attn_implementation="sdpa")`
in fp32, in bf16 (weights cast, as omnibind's bf16 path does) and with int8 dynamically quantized linears (the
same torch.ao call omnibind's int8 path makes), and omnibind loads it once per path with
`omnibind.load(folder)` + `apply_runtime`. Every variant embeds the same inputs. Before timing, omnibind fp32
must match transformers fp32 within 1e-4 (max abs of unit embeddings; exit status 1 otherwise), and each
variant's quality is measured as the cosine similarity of its unit embeddings to omnibind fp32's.

All variants of a task are timed interleaved (their order flips every repeat); the median per-batch time is
reported as items/s, with the speed-up over transformers fp32 and over transformers in the same reduced
precision (bf16 paths against transformers bf16, int8 paths against transformers int8, onnx against fp32), so
a gain that is the dtype alone shows as 1.0×. The seconds each path takes to get ready (load, quantize, ONNX
export into a fresh cache, torch.compile's first batch) are reported beside it. Results go to
benchmarks/results/ as JSON with the machine (or --json PATH).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
import transformers
from rich.console import Console
from rich.table import Table
from torch import nn

import omnibind
from omnibind.hardware import cpu_model
from omnibind.preprocess.text import train_tokenizer
from omnibind.runtime import apply_runtime, bf16_supported, int8_accelerated, matmul_features, parse_runtime, resolve

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_results lives beside this script
import bench_results

TOL = 1e-4  # fp32, max abs difference of unit embeddings
TASKS = ("image", "text")
PEER_PRECISIONS = ("fp32", "bf16", "int8")
DEFAULT_PATHS = "fp32,bf16,int8,onnx,onnx-int8,bf16+compile"
PEER_OF = {"fp32": "fp32", "bf16": "bf16", "int8": "int8", "onnx": "fp32", "onnx-int8": "int8"}
BASE = dict(hidden_size=768, intermediate_size=3072, num_attention_heads=12)
TOKEN_IDS = dict(pad_token_id=1, eos_token_id=1, bos_token_id=None)  # the SigLIP / T5 layout of the tokenizer
IMAGE_SIZE, PATCH_SIZE, TEXT_LEN, VOCAB = 224, 16, 64, 32000
WORDS = "a photo of the cat dog red blue green apple car tree house big small bird city music night".split()

Embed = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class Variant:
    """One library on one precision or path: its embedders by task, and the seconds it took to get ready."""

    name: str  # "transformers fp32", "omnibind bf16+compile"
    library: str
    path: str  # the precision (transformers) or runtime name (omnibind)
    peer: str  # the transformers variant in the same reduced precision
    embed: dict[str, Embed]
    setup_seconds: float


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    description = __doc__.split("\n\n")[1]
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--paths", default=DEFAULT_PATHS,
                        help=f"omnibind --runtime paths, comma-separated (default {DEFAULT_PATHS}; 'auto' allowed)")
    parser.add_argument("--batch", type=int, default=8, help="items per forward pass (default 8)")
    parser.add_argument("--iters", type=int, default=10, help="timed repeats per variant and task (default 10)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed repeats first (default 1)")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)), help="torch threads (all)")
    parser.add_argument("--depth", type=int, default=12, help="blocks per tower (default 12, the full base model)")
    parser.add_argument("--json", type=Path, default=None,
                        help="where to write the results (default: a new file under benchmarks/results/)")
    args = parser.parse_args(argv)
    for name in ("batch", "iters", "threads", "depth"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if args.warmup < 0:
        parser.error("--warmup must be at least 0")
    try:
        args.paths = list(dict.fromkeys(resolve(p).name for p in args.paths.split(",") if p.strip()))
    except omnibind.errors.InputError as err:
        parser.error(str(err))
    if not args.paths:
        parser.error("--paths names no path")
    return args


def environment(threads: int) -> dict[str, Any]:
    """Versions, machine and date for the header line and the JSON file."""
    import onnxruntime

    return {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "onnxruntime": onnxruntime.__version__,
        "omnibind": omnibind.__version__,
        "python": platform.python_version(),
        "cpu": cpu_model(),
        "bf16_native": bf16_supported(),
        "int8_native": int8_accelerated(),
        "matmul_features": matmul_features(),
        "default_runtime": resolve("auto").name,
        "threads": threads,
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
    }


def make_spiece(folder: Path) -> Path:
    """A tiny SigLIP-style SentencePiece model at folder/spiece.model (only needed by omnibind.load)."""
    rng = random.Random(0)
    corpus = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 10))) for _ in range(2000)]
    trained = train_tokenizer(corpus, folder / "tokenizer" / "spiece", vocab_size=64)
    return Path(shutil.copy(trained, folder / "spiece.model"))


def make_checkpoint(folder: Path, depth: int) -> Path:
    """Save a random-init SiglipModel with base-patch16-224 shapes and `depth` blocks per tower."""
    torch.manual_seed(0)
    config = transformers.SiglipConfig(
        text_config=dict(
            vocab_size=VOCAB, max_position_embeddings=TEXT_LEN, num_hidden_layers=depth, **BASE, **TOKEN_IDS
        ),
        vision_config=dict(image_size=IMAGE_SIZE, patch_size=PATCH_SIZE, num_hidden_layers=depth, **BASE),
    )
    model = transformers.SiglipModel(config)
    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()  # save_pretrained warns about the *default* text config's token ids
    try:
        model.save_pretrained(folder)
    finally:
        transformers.logging.set_verbosity(verbosity)
    make_spiece(folder)
    return folder


def features(output: Any) -> torch.Tensor:
    """transformers 5 returns an output object whose pooler_output is the embedding; older versions a tensor."""
    return output if isinstance(output, torch.Tensor) else output.pooler_output


def transformers_embedders(model: transformers.SiglipModel, dtype: torch.dtype) -> dict[str, Embed]:
    """float32 unit embeddings per task from transformers (pixels cast to the weights' dtype)."""
    return {
        "image": lambda x: F.normalize(features(model.get_image_features(pixel_values=x.to(dtype))).float(), dim=-1),
        "text": lambda x: F.normalize(features(model.get_text_features(input_ids=x)).float(), dim=-1),
    }


def load_transformers(folder: Path, precision: str) -> Variant:
    """transformers' SiglipModel in fp32, bf16 (weights cast) or with int8 dynamically quantized linears (weights
    per output channel: the same torch.ao call omnibind's int8 path makes)."""
    start = time.perf_counter()
    model = transformers.SiglipModel.from_pretrained(folder, attn_implementation="sdpa").to(torch.float32).eval()
    dtype = torch.float32
    if precision == "bf16":
        model, dtype = model.to(torch.bfloat16), torch.bfloat16
    elif precision == "int8":
        with warnings.catch_warnings():  # torch.ao's note that eager quantization moves to torchao
            warnings.simplefilter("ignore")
            model = torch.ao.quantization.quantize_dynamic(
                model, {nn.Linear: torch.ao.quantization.per_channel_dynamic_qconfig}, dtype=torch.qint8, inplace=True)
    embed = transformers_embedders(model, dtype)
    return Variant(f"transformers {precision}", "transformers", precision, precision, embed,
                   time.perf_counter() - start)


def load_omnibind(folder: Path, path: str, inputs: dict[str, torch.Tensor]) -> Variant:
    """omnibind on one --runtime path; its setup time includes one batch per task (torch.compile compiles then)."""
    start = time.perf_counter()
    model = omnibind.load(folder, device="cpu", dtype=torch.float32)
    spec = apply_runtime(model, path)
    embed = {task: (lambda x, task=task: model.encode(task, x)) for task in TASKS}
    for task in TASKS:
        embed[task](inputs[task])
    return Variant(f"omnibind {spec.name}", "omnibind", spec.name, f"transformers {PEER_OF[spec.path]}", embed,
                   time.perf_counter() - start)


def make_inputs(batch: int) -> dict[str, torch.Tensor]:
    """The same random pixels in [-1, 1] and token ids for every variant."""
    generator = torch.Generator().manual_seed(1)
    return {
        "image": torch.rand(batch, 3, IMAGE_SIZE, IMAGE_SIZE, generator=generator) * 2 - 1,
        "text": torch.randint(0, VOCAB, (batch, TEXT_LEN), generator=generator),
    }


def check_parity(ours: Variant, theirs: Variant, inputs: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Max abs difference of omnibind fp32's and transformers fp32's unit embeddings per task, against TOL."""
    diffs = {task: (ours.embed[task](inputs[task]) - theirs.embed[task](inputs[task])).abs().max().item()
             for task in TASKS}
    return {"max_abs_diff": diffs, "tolerance": TOL, "passed": all(d < TOL for d in diffs.values())}


def quality(variant: Variant, reference: dict[str, torch.Tensor], inputs: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Per task, the min and mean cosine similarity of a variant's unit embeddings to omnibind fp32's."""
    out = {}
    for task in TASKS:
        cosine = (variant.embed[task](inputs[task]) * reference[task]).sum(-1)
        out[task] = {"min": cosine.min().item(), "mean": cosine.mean().item()}
    return out


def benchmark_task(task: str, variants: list[Variant], x: torch.Tensor, iters: int, warmup: int,
                   cosines: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per variant: median (and every) seconds, items/s, speed-ups and cosine to omnibind fp32."""
    calls = {v.name: (lambda v=v: v.embed[task](x)) for v in variants}
    times = bench_results.time_interleaved(calls, iters, warmup)
    rates = {name: len(x) / statistics.median(each) for name, each in times.items()}
    rows = []
    for v in variants:
        peer = rates.get(v.peer)
        rows.append({
            "task": task, "variant": v.name, "library": v.library, "path": v.path, "batch": len(x),
            "seconds": statistics.median(times[v.name]), "seconds_each": times[v.name],
            "items_per_s": rates[v.name], "setup_seconds": v.setup_seconds,
            "speedup_vs_transformers_fp32": rates[v.name] / rates["transformers fp32"],
            "peer": v.peer, "speedup_vs_peer": None if peer is None else rates[v.name] / peer,
            "cosine_to_fp32_min": cosines[v.name][task]["min"], "cosine_to_fp32_mean": cosines[v.name][task]["mean"],
        })
    return rows


def header(env: dict[str, Any], depth: int) -> str:
    return (
        f"torch {env['torch']} · transformers {env['transformers']} · onnxruntime {env['onnxruntime']} · "
        f"omnibind {env['omnibind']} · {env['cpu']} (native bf16: {'yes' if env['bf16_native'] else 'no'}, "
        f"int8 VNNI: {'yes' if env['int8_native'] else 'no'}; "
        f"{' '.join(env['matmul_features']) or 'no bf16/int8 flags'}; auto = {env['default_runtime']}) · "
        f"{env['threads']} threads · depth {depth} · {env['date']}"
    )


def results_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="CPU inference throughput (items/s, median over repeats)")
    for name in ("task", "variant", "items/s", "vs transformers fp32", "vs same precision", "cosine to fp32 (min)",
                 "ready in"):
        table.add_column(name, justify="left" if name in ("task", "variant") else "right")
    for row in rows:
        peer = "–" if row["library"] == "transformers" else f"{row['speedup_vs_peer']:.2f}× ({row['peer'][13:]})"
        table.add_row(row["task"], row["variant"], f"{row['items_per_s']:.2f}",
                      f"{row['speedup_vs_transformers_fp32']:.2f}×", peer, f"{row['cosine_to_fp32_min']:.5f}",
                      f"{row['setup_seconds']:.1f} s")
    return table


def parity_line(parity: dict[str, Any]) -> str:
    diffs = ", ".join(f"{task} {diff:.2e}" for task, diff in parity["max_abs_diff"].items())
    verdict = "[green]ok[/green]" if parity["passed"] else "[red]FAILED[/red]"
    return (f"parity of omnibind fp32 with transformers fp32 (max abs diff of unit embeddings, tolerance "
            f"{parity['tolerance']:.0e}): {diffs} → {verdict}")


def load_variants(folder: Path, paths: list[str], inputs: dict[str, torch.Tensor]) -> list[Variant]:
    """transformers in every precision a path needs, then omnibind on every path (fp32 always, as reference)."""
    wanted = dict.fromkeys(["fp32", *(PEER_OF[parse_runtime(p).path] for p in paths)])  # type: ignore[union-attr]
    variants = [load_transformers(folder, precision) for precision in PEER_PRECISIONS if precision in wanted]
    for path in dict.fromkeys(["fp32", *paths]):
        variants.append(load_omnibind(folder, path, inputs))
    return variants


def run(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    """Build the checkpoint, load every variant, check parity and quality, then time every task."""
    torch.set_num_threads(args.threads)
    env = environment(torch.get_num_threads())
    transformers.utils.logging.disable_progress_bar()
    console.print(header(env, args.depth), soft_wrap=True)
    inputs = make_inputs(args.batch)
    with tempfile.TemporaryDirectory(prefix="omnibind-bench-") as tmp:
        previous = os.environ.get("OMNIBIND_CACHE")
        os.environ["OMNIBIND_CACHE"] = str(Path(tmp) / "cache")  # a fresh ONNX export, timed as setup
        try:
            with torch.inference_mode():
                variants = load_variants(make_checkpoint(Path(tmp) / "model", args.depth), args.paths, inputs)
        finally:
            if previous is None:
                os.environ.pop("OMNIBIND_CACHE")
            else:
                os.environ["OMNIBIND_CACHE"] = previous
    by_name = {v.name: v for v in variants}
    with torch.inference_mode():
        parity = check_parity(by_name["omnibind fp32"], by_name["transformers fp32"], inputs)
        console.print(parity_line(parity), soft_wrap=True)
        if not parity["passed"]:
            raise SystemExit("parity check failed: the two models disagree, so their timings are not comparable")
        reference = {task: by_name["omnibind fp32"].embed[task](inputs[task]) for task in TASKS}
        cosines = {v.name: quality(v, reference, inputs) for v in variants}
        rows = [row for task in TASKS
                for row in benchmark_task(task, variants, inputs[task], args.iters, args.warmup, cosines)]
    console.print(results_table(rows))
    config = {k: v for k, v in vars(args).items() if k != "json"}
    return {"environment": env, "config": config, "parity": parity, "rows": rows}


def main(argv: Sequence[str] | None = None, console: Console | None = None) -> dict[str, Any]:
    """Run the benchmark; prints the table, optionally writes --json, and returns the results."""
    args = parse_args(argv)
    console = console or Console(width=None if sys.stdout.isatty() else 200)
    results = run(args, console)
    console.print(f"written: {bench_results.save('cpu_inference', results, args.json)}")
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
