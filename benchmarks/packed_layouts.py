"""PYTHONPATH=src python benchmarks/packed_layouts.py [--rows 64,196,392,512,784,1024,1176,1568,3136,6272]
[--iters 20] [--threads N] [--json results.json]

The bf16 path's linear layers, one at a time: each SigLIP-base linear shape (768→2304 qkv, 768→768 attention
output, 768→3072 and 3072→768 MLP) with its bf16 weight reordered by oneDNN for one row
(`torch.ops.mkldnn._reorder_linear_weight(w, 1)`) and for 1,568 rows (the bf16 path's PACK_ROWS), run through
`mkldnn._linear_pointwise` with its bias (and, for the non-widening layers, the residual add the bf16 path fuses)
at each row count, against eager bf16 `F.linear` on the same inputs. The calls of one shape and row count
alternate (their order flips every repeat); the median is reported. This is the measurement behind
omnibind.runtime.torch_paths' SMALL_ROWS: which layout each row count wants differs between CPUs (with AMX it
does, markedly), so run it on the machine in question. Results go to benchmarks/results/ as JSON (or --json).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from rich.console import Console
from rich.table import Table

from omnibind.runtime.torch_paths import PACK_ROWS, SMALL_PACK_ROWS, packed_linears_supported

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_results lives beside this script
import bench_results

SHAPES = ((768, 2304), (768, 768), (768, 3072), (3072, 768))  # (in, out) of a SigLIP-base block's linears
DEFAULT_ROWS = "64,196,392,512,784,1024,1176,1568,3136,6272"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[1])
    parser.add_argument("--rows", default=DEFAULT_ROWS, help=f"row counts, comma-separated ({DEFAULT_ROWS})")
    parser.add_argument("--iters", type=int, default=20, help="timed repeats per call (default 20)")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)), help="torch threads (all)")
    parser.add_argument("--json", type=Path, default=None, help="results file (default: under benchmarks/results/)")
    args = parser.parse_args(argv)
    try:
        args.rows = [int(r) for r in args.rows.split(",") if r.strip()]
    except ValueError:
        parser.error(f"--rows must be whole numbers separated by commas, got {args.rows!r}")
    if not args.rows or min(args.rows) < 1 or args.iters < 1 or args.threads < 1:
        parser.error("--rows, --iters and --threads must be at least 1")
    return args


def layer_calls(fan_in: int, fan_out: int, rows: int) -> dict[str, Callable[[], object]]:
    """Eager bf16 F.linear and the packed call in each layout, on one random weight, bias and input."""
    generator = torch.Generator().manual_seed(fan_in * 7 + fan_out)
    weight = (torch.randn(fan_out, fan_in, generator=generator) * 0.02).to(torch.bfloat16)
    bias = torch.randn(fan_out, generator=generator).to(torch.bfloat16)
    x = torch.randn(rows, fan_in, generator=generator).to(torch.bfloat16)
    residual = torch.randn(rows, fan_out, generator=generator).to(torch.bfloat16)
    ops = torch.ops.mkldnn
    calls: dict[str, Callable[[], object]] = {"eager F.linear": lambda: F.linear(x, weight, bias)}
    for hint in (SMALL_PACK_ROWS, PACK_ROWS):
        packed = ops._reorder_linear_weight(weight, hint)
        if fan_in >= fan_out:  # the bf16 path fuses the residual add into these
            calls[f"packed for {hint}"] = lambda p=packed: ops._linear_pointwise.binary(x, residual, p, bias, "add")
        else:
            calls[f"packed for {hint}"] = lambda p=packed: ops._linear_pointwise(x, p, bias, "none", [], "")
    return calls


def measure(args: argparse.Namespace) -> list[dict[str, Any]]:
    """One row per shape and row count: median milliseconds of each call and which packed layout was faster."""
    out = []
    with torch.inference_mode():
        for fan_in, fan_out in SHAPES:
            for rows in args.rows:
                times = bench_results.time_interleaved(layer_calls(fan_in, fan_out, rows), args.iters, warmup=3)
                ms = {name: 1000 * statistics.median(each) for name, each in times.items()}
                small, large = ms[f"packed for {SMALL_PACK_ROWS}"], ms[f"packed for {PACK_ROWS}"]
                out.append({"in": fan_in, "out": fan_out, "rows": rows, "ms": ms,
                            "faster_layout_rows": SMALL_PACK_ROWS if small < large else PACK_ROWS,
                            "large_over_small": large / small})
    return out


def table(rows: list[dict[str, Any]]) -> Table:
    result = Table(title="bf16 linear layers: median ms per call, by packed layout")
    names = list(rows[0]["ms"]) if rows else []
    for name in ("layer", "rows", *names, f"{PACK_ROWS}-row layout / 1-row layout"):
        result.add_column(name, justify="left" if name == "layer" else "right")
    for r in rows:
        result.add_row(f"{r['in']}→{r['out']}", str(r["rows"]), *(f"{r['ms'][n]:.3f}" for n in names),
                       f"{r['large_over_small']:.2f}")
    return result


def main(argv: Sequence[str] | None = None, console: Console | None = None) -> dict[str, Any]:
    """Time every shape and row count, print the table, write the JSON; returns the results."""
    args = parse_args(argv)
    console = console or Console(width=None if sys.stdout.isatty() else 200)
    if not packed_linears_supported():
        raise SystemExit("this torch or CPU has no oneDNN bf16 linear: the bf16 path runs plain bf16 layers here")
    torch.set_num_threads(args.threads)
    rows = measure(args)
    console.print(table(rows))
    results = {"config": {"rows": args.rows, "iters": args.iters, "threads": torch.get_num_threads()},
               "pack_rows": PACK_ROWS, "small_pack_rows": SMALL_PACK_ROWS, "rows": rows}
    console.print(f"written: {bench_results.save('packed_layouts', results, args.json)}")
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
