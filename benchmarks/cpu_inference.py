"""PYTHONPATH=src python benchmarks/cpu_inference.py [--batch 8] [--iters 10] [--warmup 1] [--threads N] [--depth 12]
[--json results.json]

CPU inference throughput of omnibind vs transformers on SigLIP base-patch16-224 shapes (width 768, MLP 3072,
12 heads, 224 px images in 16 px patches, 64-token texts, 32000-token vocabulary), fp32, under
torch.inference_mode. One random-init transformers SiglipModel is saved with save_pretrained; transformers loads
it back with `SiglipModel.from_pretrained(folder, attn_implementation="sdpa")` and omnibind with
`omnibind.load(folder)`. Both embed the same inputs; their L2-normalised embeddings must agree within 1e-4
(max abs) before anything is timed. Timings are interleaved (the A/B order flips every repeat) and the median
per-batch time is reported as items/s, with the speed-up omnibind/transformers. Results go to
benchmarks/results/ as JSON with the machine (or --json PATH); a failed parity check exits with status 1.
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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
import transformers
from rich.console import Console
from rich.table import Table

import omnibind
from omnibind.hardware import cpu_model
from omnibind.preprocess.text import train_tokenizer

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_results lives beside this script
import bench_results

TOL = 1e-4  # fp32, max abs difference of unit embeddings
TASKS = ("image", "text")
LIBS = ("transformers", "omnibind")
BASE = dict(hidden_size=768, intermediate_size=3072, num_attention_heads=12)
TOKEN_IDS = dict(pad_token_id=1, eos_token_id=1, bos_token_id=None)  # the SigLIP / T5 layout of the tokenizer
IMAGE_SIZE, PATCH_SIZE, TEXT_LEN, VOCAB = 224, 16, 64, 32000
WORDS = "a photo of the cat dog red blue green apple car tree house big small bird city music night".split()

Embed = Callable[[torch.Tensor], torch.Tensor]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    description = __doc__.split("\n\n")[1]
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--batch", type=int, default=8, help="items per forward pass (default 8)")
    parser.add_argument("--iters", type=int, default=10, help="timed repeats per library and task (default 10)")
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
    return args


def environment(threads: int) -> dict[str, Any]:
    """Versions, machine and date for the header line and the JSON file."""
    return {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "omnibind": omnibind.__version__,
        "python": platform.python_version(),
        "cpu": cpu_model(),
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


def transformers_embedders(model: transformers.SiglipModel) -> dict[str, Embed]:
    """Unit embeddings per task from transformers, as omnibind's encode returns them."""
    return {
        "image": lambda x: F.normalize(features(model.get_image_features(pixel_values=x)), dim=-1),
        "text": lambda x: F.normalize(features(model.get_text_features(input_ids=x)), dim=-1),
    }


def omnibind_embedders(model: omnibind.OmniBind) -> dict[str, Embed]:
    """Unit embeddings per task from omnibind."""
    return {task: (lambda x, task=task: model.encode(task, x)) for task in TASKS}


def load_embedders(folder: Path) -> dict[str, dict[str, Embed]]:
    """Both libraries' models from the same checkpoint folder, fp32 on CPU, keyed by library then task."""
    hf = transformers.SiglipModel.from_pretrained(folder, attn_implementation="sdpa").to(torch.float32).eval()
    ours = omnibind.load(folder, device="cpu", dtype=torch.float32)
    return {"transformers": transformers_embedders(hf), "omnibind": omnibind_embedders(ours)}


def make_inputs(batch: int) -> dict[str, torch.Tensor]:
    """The same random pixels in [-1, 1] and token ids for both libraries."""
    generator = torch.Generator().manual_seed(1)
    return {
        "image": torch.rand(batch, 3, IMAGE_SIZE, IMAGE_SIZE, generator=generator) * 2 - 1,
        "text": torch.randint(0, VOCAB, (batch, TEXT_LEN), generator=generator),
    }


def check_parity(embedders: dict[str, dict[str, Embed]], inputs: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Max abs difference of the two libraries' unit embeddings per task, and whether all are below TOL."""
    diffs = {}
    for task in TASKS:
        a, b = (embedders[lib][task](inputs[task]) for lib in LIBS)
        diffs[task] = (a - b).abs().max().item()
    return {"max_abs_diff": diffs, "tolerance": TOL, "passed": all(d < TOL for d in diffs.values())}


def time_interleaved(calls: dict[str, Callable[[], object]], iters: int, warmup: int) -> dict[str, list[float]]:
    """Seconds of every timed call per name; the calls alternate, and their order flips every repeat."""
    names = list(calls)
    for _ in range(warmup):
        for name in names:
            calls[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for i in range(iters):
        for name in names if i % 2 == 0 else names[::-1]:
            start = time.perf_counter()
            calls[name]()
            times[name].append(time.perf_counter() - start)
    return times


def benchmark_task(
    task: str, embedders: dict[str, dict[str, Embed]], x: torch.Tensor, iters: int, warmup: int
) -> dict[str, Any]:
    """One result row: median (and every) seconds and items/s per library, and the speed-up omnibind/transformers."""
    calls = {lib: (lambda lib=lib: embedders[lib][task](x)) for lib in LIBS}
    times = time_interleaved(calls, iters, warmup)
    seconds = {lib: statistics.median(times[lib]) for lib in LIBS}
    rates = {lib: len(x) / seconds[lib] for lib in LIBS}
    row: dict[str, Any] = {"task": task, "batch": len(x)}
    for lib in LIBS:
        row[f"{lib}_seconds"] = seconds[lib]
        row[f"{lib}_seconds_each"] = times[lib]
        row[f"{lib}_items_per_s"] = rates[lib]
    row["speedup"] = rates["omnibind"] / rates["transformers"]
    return row


def header(env: dict[str, Any], depth: int) -> str:
    return (
        f"torch {env['torch']} · transformers {env['transformers']} · omnibind {env['omnibind']} · "
        f"{env['cpu']} · {env['threads']} threads · depth {depth} · fp32 · {env['date']}"
    )


def results_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="CPU inference throughput (items/s, median over repeats)")
    for name in ("task", "batch", "transformers items/s", "omnibind items/s", "speed-up"):
        table.add_column(name, justify="left" if name == "task" else "right")
    for row in rows:
        table.add_row(
            row["task"],
            str(row["batch"]),
            f"{row['transformers_items_per_s']:.2f}",
            f"{row['omnibind_items_per_s']:.2f}",
            f"{row['speedup']:.2f}×",
        )
    return table


def parity_line(parity: dict[str, Any]) -> str:
    diffs = ", ".join(f"{task} {diff:.2e}" for task, diff in parity["max_abs_diff"].items())
    verdict = "[green]ok[/green]" if parity["passed"] else "[red]FAILED[/red]"
    return f"parity (max abs diff of unit embeddings, tolerance {parity['tolerance']:.0e}): {diffs} → {verdict}"


def run(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    """Build the checkpoint, load both models, check parity, then time every task."""
    torch.set_num_threads(args.threads)
    env = environment(torch.get_num_threads())
    transformers.utils.logging.disable_progress_bar()
    console.print(header(env, args.depth), soft_wrap=True)
    with tempfile.TemporaryDirectory(prefix="omnibind-bench-") as tmp:
        embedders = load_embedders(make_checkpoint(Path(tmp), args.depth))
    inputs = make_inputs(args.batch)
    with torch.inference_mode():
        parity = check_parity(embedders, inputs)
        console.print(parity_line(parity), soft_wrap=True)
        if not parity["passed"]:
            raise SystemExit("parity check failed: the two models disagree, so their timings are not comparable")
        rows = [benchmark_task(task, embedders, inputs[task], args.iters, args.warmup) for task in TASKS]
    console.print(results_table(rows))
    config = {k: v for k, v in vars(args).items() if k != "json"}
    return {"environment": env, "config": config, "parity": parity, "rows": rows}


def main(argv: Sequence[str] | None = None, console: Console | None = None) -> dict[str, Any]:
    """Run the benchmark; prints the table, optionally writes --json, and returns the results."""
    args = parse_args(argv)
    console = console or Console()
    results = run(args, console)
    console.print(f"written: {bench_results.save('cpu_inference', results, args.json)}")
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
