"""`omnibind embed-dataset` and `omnibind index-dataset`: thin commands over omnibind.scale."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from omnibind.cli_common import DeviceOption, ModelOption, console, friendly_errors, load_model


@friendly_errors
def embed_dataset_command(
    shards: Annotated[list[str], typer.Argument(help="Tar shards, brace patterns (shard-{000..099}.tar), folders, "
                                                     "fsspec URLs or .jsonl manifests.")],
    model: ModelOption = ...,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder of Parquet shards (created; reruns resume).")] = ...,
    batch_size: Annotated[int, typer.Option(min=1, help="Examples per forward pass.")] = 64,
    workers: Annotated[int, typer.Option(min=0, help="Decoding processes per rank (0: decode in-process).")] = 2,
    device: DeviceOption = "auto",
) -> None:
    """Embed every sample of the shards into Parquet (key, modality, embedding, source, meta); under torchrun
    each rank embeds its share once; finished shards are skipped on a rerun."""
    from omnibind.scale.embed import embed_dataset
    from omnibind.search.identity import identify
    from omnibind.train import distributed

    info = distributed.setup()
    try:
        loaded = load_model(model, str(info.device) if device == "auto" else device)
        identity = identify(loaded, model).to_dict()
        report = embed_dataset(shards, loaded, identity, out, info.rank, info.world_size, batch_size, workers,
                               show_progress=info.is_main and sys.stderr.isatty())
        rate = report.examples / report.seconds if report.seconds else 0.0
        console.print(f"rank {report.rank}/{report.world_size}: {report.units_written} shards written "
                      f"({report.rows} rows from {report.examples} examples, {rate:.1f} examples/s), "
                      f"{report.units_already_done} of {report.units_owned} already done, "
                      f"{report.skipped.total} samples skipped{f' ({report.skipped})' if report.skipped.total else ''}",
                      highlight=False)
        distributed.barrier()
    finally:
        distributed.teardown()


@friendly_errors
def index_dataset_command(
    embeddings: Annotated[Path, typer.Argument(help="Folder of Parquet shards written by `omnibind embed-dataset`.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Index folder (one sub-folder per modality).")] = ...,
    modality: Annotated[list[str] | None, typer.Option(help="Index only this modality (repeatable).")] = None,
    memory_budget: Annotated[str, typer.Option(help="RAM one modality's index may take when searched, e.g. 2GB: "
                                                    "HNSW when it fits, else IVF-PQ with the largest code that "
                                                    "fits.")] = "4GB",
    target_recall: Annotated[float, typer.Option(min=0.01, max=1.0, help="Recall@10 against exact search that "
                                                 "the search settings are tuned to reach.")] = 0.95,
    kind: Annotated[str, typer.Option(help="auto (from the budget), hnsw or ivfpq.")] = "auto",
    opq: Annotated[bool, typer.Option("--opq", help="Rotate vectors with OPQ before IVF-PQ (slower to train, "
                                                    "better codes).")] = False,
    tune_with: Annotated[str | None, typer.Option(help="Tune each index on this modality's vectors as queries, "
                                                       "e.g. text for text → picture search (default: vectors of "
                                                       "the indexed modality held out of the build).")] = None,
    # default: omnibind.scale.ann.EF_CONSTRUCTION, written out so that the CLI loads faiss only inside a command
    ef_construction: Annotated[int, typer.Option(
        help="HNSW's efConstruction, 32 to 4096: candidates kept while linking each vector (higher: better "
             "recall at a given efSearch, slower build).")] = 80,
) -> None:
    """Build a memory-mapped approximate index (HNSW or IVF-PQ with exact re-ranking) from Parquet embeddings,
    tuned to a target recall@10 within a memory budget."""
    from omnibind.scale.ann import parse_size
    from omnibind.scale.dataset_index import build_dataset_index

    built = build_dataset_index(embeddings, out, modality, parse_size(memory_budget), target_recall, kind, opq,
                                show_progress=sys.stderr.isatty(), query_modality=tune_with,
                                ef_construction=ef_construction)
    for name, params in built.items():
        console.print(f"{out}/{name}: {params.describe()}", highlight=False, soft_wrap=True)


@friendly_errors
def search_dataset_command(
    index: Annotated[Path, typer.Argument(help="Index folder written by `omnibind index-dataset`.")],
    text: Annotated[str | None, typer.Argument(help="Text query.")] = None,
    file: Annotated[Path | None, typer.Option("--file", help="Query by a file of any registered media modality "
                                              "(a picture, a sound...).")] = None,
    model: ModelOption = ...,
    k: Annotated[int, typer.Option("--k", "-k", min=1, max=1000)] = 10,
    modality: Annotated[list[str] | None, typer.Option(help="Only results of this modality (repeatable).")] = None,
    device: DeviceOption = "auto",
) -> None:
    """Search a dataset index by text or by a file; prints key, modality and score, best first."""
    from rich.table import Table

    from omnibind.embed import check_towers, plan_items
    from omnibind.errors import InputError
    from omnibind.scale.dataset_index import DatasetIndex

    if (text is None) == (file is None):
        raise InputError("query", "give exactly one", "TEXT or --file FILE")
    opened = DatasetIndex.open(index)
    loaded = load_model(model, device)
    item = plan_items([file] if file is not None else [], [text] if text is not None else [])[0]
    check_towers(loaded, [item])
    if loaded.config.embed_dim != opened.embed_dim:
        raise InputError("--model", f"embeds into {loaded.config.embed_dim} dimensions",
                         f"the index's {opened.embed_dim} (the model that made the embeddings)")
    query = loaded.encode(item.modality, [item.source]).detach().float().cpu().numpy()[0]
    table = Table(title=f"{item.modality} query: {item.source}")
    for column in ("#", "score", "modality", "key"):
        table.add_column(column)
    for rank, (key, found, score) in enumerate(opened.search(query, k, modality), 1):
        table.add_row(str(rank), f"{score:.4f}", found, key)
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add embed-dataset, index-dataset and search-dataset to the `omnibind` command."""
    app.command("embed-dataset")(embed_dataset_command)
    app.command("index-dataset")(index_dataset_command)
    app.command("search-dataset")(search_dataset_command)
