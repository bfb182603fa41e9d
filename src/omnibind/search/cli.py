"""`omnibind index`, `omnibind search`, `omnibind serve`: thin commands over omnibind.search.
`omnibind search` takes a picture (--image), a sound (--audio), or a
file of any registered media modality known by its extension (--file scan.npy, for a plugin's depth maps)."""

from __future__ import annotations

import json
import sys
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

import omnibind.modalities as registry
from omnibind.cli_common import DeviceOption, ModelOption, console, errors, friendly_errors, load_model
from omnibind.errors import InputError
from omnibind.runtime.options import IndexRuntimeOption, ThreadsOption

IndexArgument = Annotated[str | None, typer.Argument(
    help="Index folder written by `omnibind index` (or --store, and then the first argument is the text query).",
    show_default=False)]
OverrideModelOption = Annotated[
    str | None, typer.Option("--model", "-m", help="Checkpoint folder or hub id (default: the index's own model).")
]
StoreOption = Annotated[str | None, typer.Option(
    "--store", help="Keep the index in PostgreSQL with pgvector instead of a folder: postgresql://USER@HOST[:PORT]/DB "
                    "(a password is best left to PGPASSWORD or ~/.pgpass); any number of `serve --store` processes "
                    "can answer from one database.")]
SearchStoreOption = Annotated[str | None, typer.Option(
    "--store", help="Search the index kept in PostgreSQL (written by `omnibind index DIR --store URL`) instead of a "
                    "folder: postgresql://USER@HOST[:PORT]/DB (a password is best left to PGPASSWORD or ~/.pgpass); "
                    "e.g. `omnibind search --store URL 'a dog'`.")]


@friendly_errors
def index_command(
    folder: Annotated[Path, typer.Argument(help="Folder of media files: images, sounds, ... (searched "
                                               "recursively).")],
    model: ModelOption = ...,
    index: Annotated[Path | None, typer.Option("--index", "-i", help="Index folder (created when missing).")] = None,
    store: StoreOption = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Files per forward pass.")] = 32,
    approximate_above: Annotated[int, typer.Option(
        min=0, help="Use an approximate (IVF) index for a modality with more items than this.")] = 200_000,
    target_recall: Annotated[float, typer.Option(
        min=0.01, max=1.0, help="Recall@10 the approximate index is tuned to reach.")] = 0.95,
    follow_symlinks: Annotated[bool, typer.Option(
        "--follow-symlinks", help="Follow symbolic links to files (their targets may lie outside the folder, and "
                                  "the service will serve them); by default links are skipped.")] = False,
    device: DeviceOption = "auto",
    runtime: IndexRuntimeOption = None,
    threads: ThreadsOption = None,
    vector_index: Annotated[str, typer.Option(
        help="faiss (exact, or IVF above --approximate-above) or ondisk (above --approximate-above: HNSW or IVF-PQ "
             "chosen from --memory-budget, saved to disk and memory-mapped; see docs/scale.md).")] = "faiss",
    memory_budget: Annotated[str, typer.Option(
        help="With --vector-index ondisk: RAM one modality's approximate index may take, e.g. 2GB.")] = "4GB",
    ef_construction: Annotated[int | None, typer.Option(
        help="With --vector-index ondisk: HNSW's efConstruction (candidates kept while linking each vector; more "
             "builds slower and can raise recall; default 80).")] = None,
) -> None:
    """Index (or update) a media folder: only new or changed files are embedded, deleted ones are dropped."""
    from omnibind.runtime import apply_runtime, batch_threads, parse_runtime
    from omnibind.search.update import update_index

    location = index_location(index, store)
    if runtime is not None:
        parse_runtime(runtime)  # a misspelt --runtime fails before the model loads
    loaded = load_model(model, device, kind="embedding")  # a captioning run: its towers, t' and b
    apply_runtime(loaded, runtime or index_runtime(location) or "auto", batch_threads(threads))
    report = update_index(location, folder, loaded, model, batch_size, approximate_above, target_recall,
                          show_progress=sys.stderr.isatty(), follow_symlinks=follow_symlinks,
                          vector_options=vector_index_options(vector_index, memory_budget, ef_construction))
    print_index_report(report, shown(location))


def vector_index_options(vector_index: str, memory_budget: str, ef_construction: int | None = None) -> dict[str, Any]:
    """The search options that pick the vector backend: none for FAISS, the on-disk backend, its budget and (where
    given) its HNSW efConstruction."""
    from omnibind.scale.ann import check_ef_construction, parse_size

    if vector_index not in ("faiss", "ondisk"):
        raise InputError("--vector-index", f"got {vector_index!r}", "faiss or ondisk")
    if ef_construction is not None and vector_index != "ondisk":
        raise InputError("--ef-construction", f"given with --vector-index {vector_index}",
                         "--vector-index ondisk (the FAISS backend builds no HNSW graph)")
    if vector_index == "faiss":
        return {}
    options = {"backend": "ondisk", "memory_budget": parse_size(memory_budget)}
    if ef_construction is not None:
        options["ef_construction"] = check_ef_construction(ef_construction, "--ef-construction")
    return options


def index_location(index: Path | None, store: str | None) -> Path | str:
    """Where the index lives: an index folder, or a PostgreSQL database (--store); exactly one of them."""
    from omnibind.search.store import is_server_url

    if (index is None) == (store is None):
        raise InputError("--store" if store else "index", "both an index folder and --store are given" if store
                         else "no index is given", "an index folder, or --store postgresql://... (one of them)")
    if store is not None and not is_server_url(store):
        raise InputError("--store", f"a {store.split('://')[0][:20]!r} location" if "://" in store else
                         "not a URL", "a postgresql://USER@HOST[:PORT]/DATABASE URL")
    return index if index is not None else str(store)


def shown(location: Path | str) -> str:
    """How output names an index: its folder, or its database URL without the password."""
    from omnibind.search.store import is_server_url

    if is_server_url(location):
        from omnibind.search.pgstore import redact

        return redact(str(location))
    return str(location)


def print_index_report(report: Any, index: Path | str) -> None:
    """What a run did, with each file it could not index named once, with its reason."""
    from omnibind.search.scan import printable

    rate = report.embedded / report.seconds if report.seconds else 0.0
    say = partial(console.print, highlight=False, markup=False, soft_wrap=True)
    say(f"{printable(report.root)}: {report.added} new, {report.changed} changed, {report.restamped} re-stamped, "
        f"{report.unchanged} unchanged, {report.removed} removed, {len(report.failed)} failed, "
        f"{len(report.still_failed)} failed earlier (unchanged, not retried), {report.skipped_count} skipped "
        f"in {report.seconds:.1f} s ({rate:.1f} files/s)")
    for modality, count in report.skipped.items():
        say(f"skipped {count} {modality} files: the model has no {modality} tower")
    for path, reason in report.skipped_files:
        say(f"skipped: {printable(path)}: {reason}")
    for _, error in report.failed:
        say(f"failed: {printable(error)}")
    for _, error in report.still_failed:
        say(f"failed earlier: {printable(error)}")
    totals = ", ".join(f"{n} {m}" for m, n in sorted(report.totals.items())) or "nothing"
    say(f"{index} holds {totals}")
    for modality, info in sorted(report.search.items()):
        say(f"  {modality}: {info.describe()}")


@friendly_errors
def search_command(
    index: IndexArgument = None,
    text: Annotated[str | None, typer.Argument(help="Text query, e.g. 'a dog on a beach'.")] = None,
    image: Annotated[Path | None, typer.Option("--image", help="Query by a picture.")] = None,
    audio: Annotated[Path | None, typer.Option("--audio", help="Query by a sound.")] = None,
    file: Annotated[Path | None, typer.Option("--file", help="Query by a file of any registered media modality, "
                                              "known by its extension (e.g. a .npy depth map).")] = None,
    store: SearchStoreOption = None,
    k: Annotated[int, typer.Option("--k", "-k", min=1, max=1000, help="Number of results.")] = 10,
    modality: Annotated[str | None, typer.Option(
        help="Only results of this media modality (e.g. image or audio).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    model: OverrideModelOption = None,
    device: DeviceOption = "auto",
    runtime: IndexRuntimeOption = None,
) -> None:
    """Search an index (a folder, or a PostgreSQL database with --store) by text, or by a file: a picture
    (--image), a sound (--audio), or a file of any registered media modality (--file)."""
    from omnibind.search.query import one_of

    if store is not None and index is not None and text is None and all(q is None for q in (image, audio, file)) \
            and not Path(index).is_dir():
        index, text = None, index  # `search --store URL "a dog"`: no folder, so the one argument is the text
    searcher = open_searcher(index_location(None if index is None else Path(index), store), model, device, runtime)
    given = (("text", text), ("image", image), ("audio", audio), (file_modality(file), file))
    queries = [(m, q) for m, q in given if q is not None]
    if len(queries) != 1:
        raise InputError("query", f"got {len(queries)} queries", f"exactly one of {query_flags(searcher)}")
    if modality is not None and modality not in registry.media_names():
        raise InputError("--modality", f"got {modality!r}", one_of(searcher.item_modalities))
    query_modality, query = queries[0]
    source = query if isinstance(query, str) else str(query)
    hits = searcher.search(query_modality, source, k, None if modality is None else [modality])
    if as_json:
        payload = {"query": {"modality": query_modality, "value": source, "filter": modality},
                   "results": [hit.to_dict() for hit in hits]}
        console.print_json(json.dumps(payload))
        return
    table = Table(title=f"{query_modality} query: {source}")
    for column, justify in (("#", "right"), ("score", "right"), ("modality", "left")):
        table.add_column(column, justify=justify)
    table.add_column("path", overflow="fold")
    for rank, hit in enumerate(hits, 1):
        table.add_row(str(rank), f"{hit.score:.4f}", hit.item.modality, hit.item.path)
    console.print(table)


OWN_OPTIONS = ("image", "audio")
"""Media modalities with a query option of their own (--image, --audio); every other one is queried by --file."""


def file_modality(file: Path | None) -> str:
    """The media modality of a --file query, from its extension ("" when no file is given)."""
    if file is None:
        return ""
    found = registry.modality_of(file)
    if found is None:
        from omnibind.search.query import one_of

        extensions = (f".{ext}" for m in registry.media() for ext in m.extensions)
        raise InputError("--file", f"no registered modality reads {file.suffix or 'files without an extension'}",
                         f"a file ending in {one_of(extensions)}")
    return found


def query_flags(searcher: Any) -> str:
    """How to pass a query this index's model can embed: TEXT, --image FILE, --audio FILE, or --file FILE."""
    media = [m for m in searcher.query_modalities if registry.get(m).is_media]
    flags = ["TEXT", *(f"--{m} FILE" for m in OWN_OPTIONS if m in media)]
    return ", ".join(flags + (["--file FILE"] if set(media) - set(OWN_OPTIONS) else []))


@friendly_errors
def serve_command(
    index: Annotated[Path | None, typer.Argument(help="Index folder written by `omnibind index` (or --store).")]
    = None,
    store: StoreOption = None,
    host: Annotated[str, typer.Option(help="Interface to listen on (loopback by default; any other needs --token "
                                           "or --insecure).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535)] = 8000,
    max_upload_mb: Annotated[float, typer.Option(min=0.01, help="Largest accepted upload, in MiB.")] = 20.0,
    token: Annotated[str | None, typer.Option(
        envvar="OMNIBIND_TOKEN", help="Require 'Authorization: Bearer TOKEN' on every request (the web page: open "
                                      "/?token=TOKEN once). At least 16 of A-Z a-z 0-9 . _ ~ -.")] = None,
    insecure: Annotated[bool, typer.Option(
        "--insecure", help="Serve on a non-loopback interface without a token: anyone who can reach it can read "
                           "every indexed file.")] = False,
    allowed_host: Annotated[list[str] | None, typer.Option(
        "--allowed-host", help="A host name clients use to reach the service (repeatable); localhost and IP "
                               "addresses are always allowed, other Host headers are refused (DNS rebinding).")] = None,
    cors_origin: Annotated[list[str] | None, typer.Option(
        "--cors-origin", help="An origin (https://app.example) whose pages may call the API (repeatable); CORS is "
                              "off by default.")] = None,
    threads: Annotated[int, typer.Option(
        min=1, max=256, help="Threads per PyTorch op and FAISS search: each tower embeds its queries on its own "
                             "thread, so one thread each keeps them from fighting over the cores.")] = 1,
    model: OverrideModelOption = None,
    device: DeviceOption = "auto",
    runtime: IndexRuntimeOption = None,
) -> None:
    """Serve the index over HTTP: POST /search, /items/{id}, thumbnails, media, /health, the web page at /; with a
    checkpoint that also holds a decoder (a captioning run's), POST /caption and GET /items/{id}/caption too."""
    import uvicorn

    from omnibind.search.security import Guard, TimedH11Protocol, is_loopback
    from omnibind.search.service import create_app

    location = index_location(index, store)
    check_exposure(host, token, insecure)
    set_threads(threads)
    searcher = open_searcher(location, model, device, runtime)
    generator = open_generator(model or searcher.index.model.name, device)
    app: Any = create_app(searcher, max_upload_bytes=int(max_upload_mb * 1024 * 1024), generator=generator)
    if cors_origin:
        from starlette.middleware.cors import CORSMiddleware

        app = CORSMiddleware(app, allow_origins=list(cors_origin), allow_methods=["GET", "HEAD", "POST"],
                             allow_headers=["authorization", "content-type", "range"])
    app = Guard(app, token=token, allowed_hosts=list(allowed_host or ()))
    if not is_loopback(host):
        how = "with a bearer token" if token else "WITHOUT a token (--insecure): anyone who can reach it can read it"
        errors.print(f"warning: serving on {host}, reachable from other machines, {how}", highlight=False)
    console.print(f"serving {shown(location)} on http://{host}:{port}/ (OpenAPI spec at /openapi.json)",
                  highlight=False)
    if generator is not None:
        console.print("captions: POST /caption and GET /items/{id}/caption, with the checkpoint's decoder",
                      highlight=False, markup=False)
    uvicorn.run(app, host=host, port=port, log_level="warning", http=TimedH11Protocol, timeout_keep_alive=5)


def set_threads(threads: int) -> None:
    """Threads per PyTorch op and per FAISS search: requests run side by side on their own threads, and
    spinning thread teams of each op would fight over the same cores (a 15 ms text forward takes a second)."""
    import faiss
    import torch

    torch.set_num_threads(threads)
    faiss.omp_set_num_threads(threads)


TOKEN_CHARACTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~-")


def check_exposure(host: str, token: str | None, insecure: bool) -> None:
    """Refuse a non-loopback bind without a token (unless --insecure), and a token too short or odd to be one."""
    from omnibind.search.security import is_loopback

    if token is not None and (len(token) < 16 or not set(token) <= TOKEN_CHARACTERS):
        raise InputError("--token", f"a token of {len(token)} characters" if len(token) < 16 else
                         "a token with characters outside A-Z a-z 0-9 . _ ~ -",
                         "at least 16 of A-Z a-z 0-9 . _ ~ - (e.g. from `python -c 'import secrets; "
                         "print(secrets.token_urlsafe())'`)")
    if not is_loopback(host) and token is None and not insecure:
        raise InputError("--host", f"{host} is reachable from other machines and no --token is given",
                         "--token TOKEN (or OMNIBIND_TOKEN), or --insecure to serve every indexed file to anyone "
                         "who can reach it")


def open_searcher(index: Path | str, model: str | None, device: str, runtime: str | None = None) -> Any:
    """The index with its own model (or `model`, which must be the same one), embedding queries on the inference
    path that built the index (or on `runtime`, with a note when that differs)."""
    from omnibind.runtime import apply_runtime, parse_runtime
    from omnibind.search.index import SearchIndex
    from omnibind.search.query import Searcher

    if runtime is not None:
        parse_runtime(runtime)
    opened = SearchIndex(index)
    name = model or opened.model.name
    loaded = load_model(name, device, kind="embedding")
    built = stored_runtime(opened.store)
    spec = apply_runtime(loaded, runtime or built or "auto")
    if built is not None and spec.name != built:
        errors.print(f"note: {opened.name} was built with --runtime {built}; queries are embedded with {spec.name}",
                     highlight=False)
    return Searcher(opened, loaded, name)


def open_generator(name: str, device: str) -> Any | None:
    """The Generator of the index's checkpoint when it also holds a decoder (a captioning run's), else None; a
    decoder that does not load leaves captioning off, with a note."""
    from omnibind.checkpoint import holds_generator
    from omnibind.errors import CheckpointError

    if not holds_generator(name):
        return None
    try:
        generator = load_model(name, device, kind="generator")
    except (CheckpointError, InputError) as err:
        errors.print(f"note: captioning is off: the decoder of {name} does not load ({err})", highlight=False,
                     markup=False)
        return None
    if generator.tokenizer is None:
        errors.print(f"note: captioning is off: the decoder of {name} has no prompt tokenizer", highlight=False,
                     markup=False)
        return None
    return generator


def stored_runtime(store: Any) -> str | None:
    """The --runtime an open index records (fp32 for one that predates the record; None when it is empty)."""
    from omnibind.runtime.record import META_KEY, recorded_spec

    spec = recorded_spec(store.meta(META_KEY), sum(store.counts().values()) > 0)
    return None if spec is None else spec.name


def index_runtime(index: Path | str) -> str | None:
    """The --runtime the index at `index` was built with; None when there is no index there yet."""
    from omnibind.search.store import DB_FILE, is_server_url, open_store

    if not is_server_url(index) and not (Path(index) / DB_FILE).is_file():
        return None
    if is_server_url(index):
        from omnibind.search.pgstore import holds_index

        if not holds_index(str(index)):
            return None
    store = open_store(index)
    try:
        return stored_runtime(store)
    finally:
        store.close()


def register(app: typer.Typer) -> None:
    """Add index, search and serve to the `omnibind` command."""
    app.command("index")(index_command)
    app.command("search")(search_command)
    app.command("serve")(serve_command)
