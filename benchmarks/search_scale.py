"""PYTHONPATH=src python benchmarks/search_scale.py [--n 1000000] [--dim 768] [--data random|clustered|real]
[--kinds ivf,hnsw,ivfpq] [--queries 500] [--latency-queries 200] [--nprobe 1,4,16,64,256] [--target-recall 0.95]
[--model CKPT --starter data/starter/train | --embeddings DIR] [--work DIR] [--threads N] [--seed 0] [--json PATH]
[--ef-construction 80] [--cold [--cold-queries N] [--cold-scope all|vectors]]

Build time, bytes per vector, single-query latency (p50/p99) and recall@10 against exact search of omnibind's
indexes, side by side with exact search, on N stored vectors:

  exact   faiss' flat inner-product scan over the vectors (memory-mapped), what omnibind uses for small sets;
  ivf     IVF-Flat as `omnibind index` builds it above its size threshold (omnibind.search.ann.build_ivf: about
          √N cells, nprobe tuned to the target recall), swept over --nprobe;
  hnsw    HNSW (M=32, --ef-construction) built by `omnibind index-dataset` from Parquet shards, efSearch tuned
          to the target;
  ivfpq   IVF-PQ (d/8-byte codes, about √N cells) with exact re-ranking, built the same way, nprobe and the
          re-ranked candidates tuned to the target.

The hnsw and ivfpq indexes are built from Parquet shards laid out as `omnibind embed-dataset` writes them, in
streaming passes, saved to disk and searched memory-mapped; their build time includes reading the shards,
training, adding, saving and tuning. They are tuned (`index-dataset --tune-with`) on 512 further queries drawn
like the measured ones but not the same, as a user tunes on the searches they expect. Recall is measured on
fresh queries (not stored vectors) against exact search; latency is one query at a time (as the service sends
them), one OpenMP thread, configurations interleaved, one warm-up each.

With --cold, the exact, hnsw and ivfpq rows are timed again, "cold": before each timed query the files that row
searches (exact: the raw vectors; an index: every file of its folder, the mapped re-ranking vectors and
inverted lists included) are dropped from memory (omnibind.scale.pagecache: unmapped with madvise, then dropped
from the page cache), so its reads go to the disk, as for a collection past RAM. What is left in memory after
each eviction and the disk the files lie on (device, file system, rotational as the kernel reports it) are in
the JSON. Exact search then reads every vector from the disk per query: --cold-queries bounds their number.
--cold-scope vectors evicts only IVF-PQ's re-ranking vectors, its codes and lists staying in memory as they do
in a server whose memory budget holds them (the collection past RAM that IVF-PQ is chosen for).

The data, each called what it is:

  random     uniform random unit vectors: no structure, the worst case for every approximate index;
  clustered  unit vectors around 1,000 random centres, queries drawn the same way: the best case for IVF;
  real       embeddings an omnibind model made of real items: --model CKPT --starter SHARDS embeds N augmented
             pictures of the starter set (random crops, flips, rotations, colour changes, at twice the model's
             resolution) with the model's image
             tower and queries with its text tower on the starter captions (text → picture search); or
             --embeddings DIR reads a folder written by `omnibind embed-dataset` (--modality, --query-modality).

Results go to benchmarks/results/ as JSON with the machine (or --json PATH); a table is printed.
"""

from __future__ import annotations

import argparse
import itertools
import os
import random as pyrandom
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from rich.console import Console
from rich.table import Table

from omnibind.scale import ann, pagecache, parquet
from omnibind.scale.dataset_index import DatasetIndex, build_dataset_index
from omnibind.search.ann import RECALL_K, build_ivf, ivf_lists

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_results lives beside this script
import bench_results

CHUNK = 100_000
CLUSTERS, CLUSTER_SPREAD = 1000, 1.5  # clustered data: noise of norm 1.5 around unit-norm centres
KINDS = ("ivf", "hnsw", "ivfpq")
COLD_SCOPES = ("all", "vectors")
MODALITY = "vector"  # the Parquet modality of the stored vectors
TUNING = "query"  # and of the queries the indexes are tuned on (another draw than the measured queries)
DATA_CASES = {
    "random": "uniform random unit vectors: no structure, the worst case for any approximate index",
    "clustered": f"unit vectors around {CLUSTERS:,} random centres: the best case for IVF",
    "real": "embeddings an omnibind model made of real items",
}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    description = __doc__.split("\n\n")[1]
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000, help="stored vectors (default 1,000,000)")
    parser.add_argument("--dim", type=int, default=768, help="dimension of random or clustered data (default 768)")
    parser.add_argument("--data", choices=tuple(DATA_CASES), default="random")
    parser.add_argument("--kinds", default=",".join(KINDS), help=f"indexes beside exact search ({','.join(KINDS)})")
    parser.add_argument("--queries", type=int, default=500, help="fresh queries for recall@10 (default 500)")
    parser.add_argument("--latency-queries", type=int, default=200, help="single queries timed per row (200)")
    parser.add_argument("--nprobe", default="1,4,16,64,256", help="IVF-Flat nprobe values to sweep")
    parser.add_argument("--target-recall", type=float, default=0.95, help="recall@10 the indexes are tuned to")
    parser.add_argument("--model", type=Path, help="--data real: the checkpoint that embeds the items")
    parser.add_argument("--starter", default="data/starter/train", help="--data real: shards of the pictures "
                                                                         "and captions (default data/starter/train)")
    parser.add_argument("--embeddings", type=Path, help="--data real: a folder written by omnibind embed-dataset")
    parser.add_argument("--modality", default="image", help="--embeddings: the modality indexed (image)")
    parser.add_argument("--query-modality", default="text", help="--embeddings: the modality of queries (text)")
    parser.add_argument("--save-embeddings", type=Path,
                        help="--data real with --model: also keep the embeddings as an embed-dataset folder (pictures "
                             "as image, the queries as text) for later runs with --embeddings DIR")
    parser.add_argument("--work", type=Path, help="folder for the Parquet shards and indexes (default: a temporary "
                                                  "folder, removed at the end)")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                        help="faiss threads for building and batched recall searches (all)")
    parser.add_argument("--ef-construction", type=int, default=ann.EF_CONSTRUCTION,
                        help=f"HNSW's efConstruction ({ann.EF_CONSTRUCTION})")
    parser.add_argument("--cold", action="store_true", help="also time the exact, hnsw and ivfpq rows with their "
                                                            "files evicted from memory before each query")
    parser.add_argument("--cold-scope", choices=COLD_SCOPES, default="all",
                        help="--cold: all (every file of an index: the worst case) or vectors (IVF-PQ keeps its codes "
                             "and inverted lists in memory, as a server within its memory budget does, and reads only "
                             "the re-ranking vectors from the disk; HNSW's one file holds graph and vectors alike)")
    parser.add_argument("--cold-queries", type=int, help="--cold: single queries timed per cold row (default: "
                                                         "--latency-queries)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None,
                        help="where to write the results (default: a new file under benchmarks/results/)")
    args = parser.parse_args(argv)
    if args.n < 2000 or args.dim < 2 or args.queries < 1 or args.latency_queries < 1 or args.threads < 1:
        parser.error("--n must be at least 2000; --dim, --queries, --latency-queries and --threads positive")
    if not 0 < args.target_recall <= 1:
        parser.error("--target-recall must be in (0, 1]")
    low, high = ann.EF_CONSTRUCTION_RANGE
    if not low <= args.ef_construction <= high:
        parser.error(f"--ef-construction must be from {low} to {high} (got {args.ef_construction})")
    if args.cold_scope != "all" and not args.cold:
        parser.error("--cold-scope goes with --cold")
    if args.cold_queries is not None and (not args.cold or args.cold_queries < 1):
        parser.error("--cold-queries must be positive and goes with --cold")
    args.cold_queries = args.cold_queries or args.latency_queries
    try:
        args.nprobe = sorted({int(v) for v in args.nprobe.split(",") if v.strip()})
    except ValueError:
        parser.error("--nprobe must be comma-separated integers")
    args.kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    if not args.kinds or set(args.kinds) - set(KINDS):
        parser.error(f"--kinds must name some of {', '.join(KINDS)}")
    if args.data == "real" and (args.model is None) == (args.embeddings is None):
        parser.error("--data real needs --model CKPT (with --starter) or --embeddings DIR, one of them")
    if args.save_embeddings is not None and args.model is None:
        parser.error("--save-embeddings needs --data real --model CKPT")
    return args


def unit_vectors(n: int, dim: int, rng: np.random.Generator, centres: np.ndarray | None = None) -> Iterator[np.ndarray]:
    """n random unit vectors in chunks, uniform on the sphere or (with `centres`) around random centres."""
    for start in range(0, n, CHUNK):
        block = rng.standard_normal((min(CHUNK, n - start), dim), dtype=np.float32)
        if centres is not None:
            block = centres[rng.integers(0, len(centres), len(block))] + CLUSTER_SPREAD * block / np.sqrt(dim)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        yield block


def synthetic(args: argparse.Namespace) -> tuple[Iterator[np.ndarray], np.ndarray, dict[str, Any]]:
    """Chunks of stored vectors, the queries, and how they were made (random or clustered)."""
    rng = np.random.default_rng(args.seed)
    centres = next(unit_vectors(CLUSTERS, args.dim, rng)) if args.data == "clustered" else None
    queries = np.concatenate(list(unit_vectors(args.queries + ann.TUNE_QUERIES, args.dim, rng, centres)))
    return unit_vectors(args.n, args.dim, rng, centres), queries, {"source": args.data}


def augmented_pictures(args: argparse.Namespace, console: Console
                       ) -> tuple[Iterator[np.ndarray], np.ndarray, dict[str, Any]]:
    """Chunks of image embeddings of N augmented starter pictures, and text-tower queries of its captions."""
    import io

    import torch
    from PIL import Image, ImageEnhance, ImageOps

    import omnibind
    from omnibind.data.shardlist import ShardPlan

    model = omnibind.load(args.model, device="cpu").eval()
    side = 2 * int(getattr(model.config.towers["image"], "image_size", 224))  # augment at twice what the model sees
    pictures, captions = [], []
    for unit in ShardPlan.build(args.starter, 1).units:
        for sample in unit.samples(lambda *_: None):
            raw = sample.materialize()
            field = raw.field_for("image")
            if field is not None:
                picture = Image.open(io.BytesIO(raw.read(field))).convert("RGB")
                picture.thumbnail((side, side), Image.Resampling.BICUBIC)
                pictures.append(picture)
            if raw.field_for("text") is not None:
                captions.append(raw.read(raw.field_for("text") or "txt").decode("utf-8", errors="replace"))
    if not pictures or not captions:
        raise SystemExit(f"{args.starter}: no pictures or no captions to embed")
    rng = pyrandom.Random(args.seed)

    def augment(picture: Image.Image) -> Image.Image:
        w, h = picture.size
        scale = rng.uniform(0.6, 1.0)
        cw, ch = max(8, int(w * scale)), max(8, int(h * scale))
        x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
        out = picture.crop((x, y, x + cw, y + ch)).rotate(rng.uniform(-15, 15), fillcolor=(255, 255, 255))
        if rng.random() < 0.5:
            out = ImageOps.mirror(out)
        for enhance in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
            out = enhance(out).enhance(rng.uniform(0.7, 1.3))
        return out

    @torch.no_grad()
    def chunks() -> Iterator[np.ndarray]:
        done, start = 0, time.perf_counter()
        while done < args.n:
            batch = [augment(rng.choice(pictures)) for _ in range(min(512, args.n - done))]
            yield model.encode("image", batch).float().numpy()
            done += len(batch)
            if done % (50 * 512) < 512 or done == args.n:
                console.print(f"embedded {done:,} augmented pictures ({done / (time.perf_counter() - start):.0f}/s)")

    templates = ("{}", "a picture of {}", "an image of {}", "{}, drawn", "a small picture of {}")
    texts = [rng.choice(templates).format(rng.choice(captions)) for _ in range(args.queries + ann.TUNE_QUERIES)]
    with torch.no_grad():
        queries = np.concatenate([model.encode("text", texts[s : s + 256]).float().numpy()
                                  for s in range(0, len(texts), 256)])
    source = {"source": f"{len(pictures)} starter pictures of {args.starter}, augmented; queries: "
                        f"{len(set(captions))} distinct captions under 5 templates (text → picture search)",
              "model": str(args.model)}
    return chunks(), queries, source


def part_rows(prefix: str, start: int, count: int, modality: str) -> dict[str, list[Any]]:
    """The non-vector columns of `count` Parquet rows as embed-dataset writes them: keys prefix+start, … ."""
    return {"key": [f"{prefix}{start + i}" for i in range(count)], "modality": [modality] * count,
            "source": ["search_scale.py"] * count, "meta": [None] * count}


def saved(chunks: Iterator[np.ndarray], queries: np.ndarray, folder: Path, source: dict[str, Any]
          ) -> Iterator[np.ndarray]:
    """Pass the chunks through, writing each as a part of an embed-dataset folder (modality image), after the
    queries (modality text, in their order: measured first, then tuning) and a plan naming the source."""
    folder.mkdir(parents=True, exist_ok=False)
    dim = queries.shape[1]
    parquet.write_plan(folder, {"model": source.get("model"), "embed_dim": dim, "source": source["source"]})
    parquet.write_part(folder / parquet.part_name(0), part_rows("q", 0, len(queries), "text"), queries, dim)
    count = 0
    for part, block in enumerate(chunks, start=1):
        parquet.write_part(folder / parquet.part_name(part), part_rows("v", count, len(block), "image"), block, dim)
        count += len(block)
        yield block


def embedded_folder(args: argparse.Namespace) -> tuple[Iterator[np.ndarray], np.ndarray, dict[str, Any]]:
    """Chunks of one modality's vectors from an embed-dataset folder (the first N), and the first queries of
    another modality from the same folder."""
    def chunks() -> Iterator[np.ndarray]:
        left = args.n
        for _, _, vectors in parquet.iter_vectors(args.embeddings, args.modality):
            if left <= 0:
                return
            yield vectors[:left]
            left -= len(vectors[:left])

    queries: list[np.ndarray] = []
    for _, _, vectors in parquet.iter_vectors(args.embeddings, args.query_modality):
        queries.append(vectors)
        if sum(len(q) for q in queries) >= args.queries + ann.TUNE_QUERIES:
            break
    found = np.concatenate(queries)[: args.queries + ann.TUNE_QUERIES] if queries else np.zeros((0, 1), np.float32)
    if len(found) == 0:
        raise SystemExit(f"{args.embeddings}: no {args.query_modality} embeddings to query with")
    return chunks(), found, {"source": f"{args.modality} embeddings of {args.embeddings}; queries: the first "
                                       f"{min(len(found), args.queries)} {args.query_modality} embeddings "
                                       f"(tuned on the next {max(0, len(found) - args.queries)})",
                             "model": (parquet.read_plan(args.embeddings) or {}).get("model")}


def write_source(chunks: Iterator[np.ndarray], tuning: np.ndarray, work: Path) -> tuple[np.ndarray, int]:
    """Stream the stored vectors into Parquet shards (as embed-dataset lays them out) with the tuning queries as
    modality "query", and a raw float32 file for exact search; returns the raw file memory-mapped and the count.
    Memory: one chunk."""
    (work / "emb").mkdir(parents=True)
    if len(tuning):
        rows = part_rows("q", 0, len(tuning), TUNING)
        parquet.write_part(work / "emb" / parquet.part_name(999_999), rows, tuning, tuning.shape[1])
    count, dim = 0, 0
    with open(work / "vectors.f32", "wb") as raw:
        for part, block in enumerate(chunks):
            block = np.ascontiguousarray(block, dtype=np.float32)
            dim = block.shape[1]
            rows = part_rows("v", count, len(block), MODALITY)
            parquet.write_part(work / "emb" / parquet.part_name(part), rows, block, dim)
            raw.write(block.tobytes())
            count += len(block)
    return np.memmap(work / "vectors.f32", dtype=np.float32, mode="r", shape=(count, dim)), count


def evicted_files(folder: Path, kind: str, scope: str) -> list[Path]:
    """The files of an index folder that --cold drops before each query: all of them, or (scope "vectors") only
    IVF-PQ's full-precision re-ranking vectors, its codes staying in memory."""
    every = sorted(p for p in folder.iterdir() if p.is_file())
    if scope == "vectors" and kind == ann.IVFPQ:
        return [p for p in every if p.name == ann.VECTORS_FILE]  # its full-precision re-ranking vectors
    return every


def interleaved_latencies_ms(searches: dict[str, Callable[[np.ndarray], Any]], queries: np.ndarray,
                             prepare: Callable[[str], None] | None = None) -> dict[str, np.ndarray]:
    """Milliseconds per single-query search for each configuration; configurations take turns on every query
    (order reversed on odd queries) so that load from other processes hits them alike. One warm-up each;
    `prepare(name)` runs untimed before each timed query (--cold evicts that configuration's files)."""
    for search in searches.values():
        search(queries[:1])
    times = {name: np.empty(len(queries)) for name in searches}
    order = list(searches)
    for i in range(len(queries)):
        for name in order if i % 2 == 0 else reversed(order):
            if prepare is not None:
                prepare(name)
            start = time.perf_counter()
            searches[name](queries[i : i + 1])
            times[name][i] = time.perf_counter() - start
    return {name: values * 1000 for name, values in times.items()}


def evictor(files: dict[str, list[Path]], left: dict[str, int]) -> Callable[[str], None]:
    """A `prepare` hook that drops a configuration's files from memory and keeps in `left` the most bytes of
    them found still cached right after (what eviction missed)."""
    def evict(name: str) -> None:
        for path in files[name]:
            try:
                pagecache.evict(path)
            except OSError as err:
                raise SystemExit(f"--cold: cannot evict {path} from memory ({err})") from err
        left[name] = max(left.get(name, 0), sum(pagecache.resident_bytes(path) for path in files[name]))

    return evict


def latency_rows(names: dict[str, dict[str, Any]], times: dict[str, np.ndarray], count: int, cache: str
                 ) -> list[dict[str, Any]]:
    """Table rows of one cache state ("warm", or "cold": files evicted before each query) with p50, p99 and the
    speed-up over exact search in the same state."""
    exact_p50 = float(np.percentile(times["exact"], 50))
    rows = []
    for name, row in names.items():
        p50, p99 = float(np.percentile(times[name], 50)), float(np.percentile(times[name], 99))
        rows.append({**row, "nlist": row.get("nlist"), "nprobe": row.get("nprobe"), "cache": cache, "p50_ms": p50,
                     "p99_ms": p99, "speedup_p50": exact_p50 / p50,
                     "memory_mb": row["ram_bytes_per_vector"] * count / 2**20})
    return rows


def cold_rows(args: argparse.Namespace, work: Path, names: dict[str, dict[str, Any]],
              searches: dict[str, Callable[[np.ndarray], Any]], files: dict[str, list[Path]], queries: np.ndarray,
              count: int) -> list[dict[str, Any]]:
    """The rows whose searches read files, timed with those files evicted before each single query."""
    left: dict[str, int] = {}
    times = interleaved_latencies_ms({name: searches[name] for name in files}, queries[: args.cold_queries],
                                     evictor(files, left))
    described = {name: {**names[name], "evicted_files": [str(p.relative_to(work)) for p in files[name]],
                        "file_bytes": sum(p.stat().st_size for p in files[name]),
                        "resident_after_evict_bytes_max": left[name]} for name in files}
    return latency_rows(described, times, count, "cold")


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean |found ∩ truth| / k over queries."""
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)]))


def folder_bytes(folder: Path) -> int:
    """Bytes of every file in a folder."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def main(argv: Sequence[str] | None = None, console: Console | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    console = console or Console(width=160)
    faiss.omp_set_num_threads(args.threads)
    work = args.work or Path(tempfile.mkdtemp(prefix="omnibind-search-scale-"))
    if args.work is not None:
        shutil.rmtree(work / "emb", ignore_errors=True)
        work.mkdir(parents=True, exist_ok=True)
    try:
        return run(args, work, console)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)


def run(args: argparse.Namespace, work: Path, console: Console) -> dict[str, Any]:
    storage = pagecache.storage(work)
    if args.cold and storage.get("fstype") in ("tmpfs", "ramfs"):
        raise SystemExit(f"--cold: {work} is on {storage['fstype']}, whose files live in memory; give --work a "
                         "folder on a disk")
    start = time.perf_counter()
    if args.data != "real":
        chunks, queries, source = synthetic(args)
    elif args.embeddings is not None:
        chunks, queries, source = embedded_folder(args)
    else:
        chunks, queries, source = augmented_pictures(args, console)
        if args.save_embeddings is not None:
            chunks = saved(chunks, queries, args.save_embeddings, source)
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    queries, tuning = queries[: args.queries], queries[args.queries :]
    vectors, count = write_source(chunks, tuning, work)
    dim = vectors.shape[1]
    generate_s = time.perf_counter() - start
    console.print(f"{count:,} × {dim} {args.data} vectors written as Parquet in {generate_s:.1f} s")
    ids = np.arange(1, count + 1, dtype=np.int64)
    start = time.perf_counter()
    truth = ann.exact_rows(vectors, queries, RECALL_K) + 1  # rows → ids
    console.print(f"exact top-{RECALL_K} of {len(queries)} queries in {time.perf_counter() - start:.1f} s")

    searches: dict[str, Callable[[np.ndarray], Any]] = {
        "exact": lambda q: faiss.knn(q, vectors, RECALL_K, faiss.METRIC_INNER_PRODUCT)}
    files: dict[str, list[Path]] = {"exact": [work / "vectors.f32"]}  # what each row reads: --cold evicts it
    names: dict[str, dict[str, Any]] = {"exact": {"index": "exact (flat inner product)", "settings": "–",
                                                  "recall_at_10": 1.0, "build_s": 0.0, "ram_bytes_per_vector": 4 * dim,
                                                  "disk_bytes_per_vector": 4 * dim}}
    results: dict[str, Any] = {"faiss": faiss.__version__, "threads": args.threads, "data": args.data,
                               "data_case": DATA_CASES[args.data], **source, "n": count, "dim": dim,
                               "queries": len(queries), "tuning_queries": len(tuning),
                               "target_recall": args.target_recall, "ef_construction": args.ef_construction,
                               "generate_s": generate_s, "storage": storage}
    opened: dict[str, ann.AnnIndex] = {}
    for kind in (k for k in args.kinds if k in (ann.HNSW, ann.IVFPQ)):
        start = time.perf_counter()
        marks = {"start": start}

        def mark(_: str, step: str, marks: dict[str, float] = marks) -> None:
            marks[step] = time.perf_counter()

        params = build_dataset_index(work / "emb", work / f"idx-{kind}", [MODALITY], memory_budget=2**40,
                                     target_recall=args.target_recall, kind=kind,
                                     query_modality=TUNING if len(tuning) else None, on_step=mark,
                                     ef_construction=args.ef_construction)[MODALITY]
        build_s = time.perf_counter() - start
        results[f"{kind}_phases_s"] = {b: marks[b] - marks[a] for a, b in itertools.pairwise(marks)}
        index = opened[kind] = DatasetIndex.open(work / f"idx-{kind}").parts[MODALITY]
        disk = folder_bytes(work / f"idx-{kind}" / MODALITY)
        phases = ", ".join(f"{name} {s:.1f} s" for name, s in results[f"{kind}_phases_s"].items())
        console.print(f"built {kind} in {build_s:.1f} s ({phases}): {params.describe()}")
        results[f"{kind}_params"] = params.to_dict()
        built = build_settings(params)
        for label, settings in ann_settings(params):
            name = f"{kind} {label}"
            found = index.search(queries, RECALL_K, **settings)[1] + 1
            names[name] = {"index": f"{'HNSW' if kind == ann.HNSW else 'IVF-PQ + re-ranking'}{label}",
                           "settings": ", ".join(f"{k}={v}" for k, v in {**built, **settings}.items()),
                           **({"ef_construction": params.ef_construction} if kind == ann.HNSW else {}),
                           "recall_at_10": recall(found, truth), "build_s": build_s,
                           "ram_bytes_per_vector": params.memory_bytes / count, "disk_bytes_per_vector": disk / count}
            searches[name] = lambda q, index=index, settings=settings: index.search(q, RECALL_K, **settings)
            files[name] = evicted_files(work / f"idx-{kind}" / MODALITY, kind, args.cold_scope)
    if "ivf" in args.kinds:
        start = time.perf_counter()
        ivf, info = build_ivf(ids, vectors, args.target_recall)
        build_s = time.perf_counter() - start
        console.print(f"built IVF-Flat nlist={info.nlist} in {build_s:.1f} s; tuned nprobe={info.nprobe} "
                      f"(self-measured recall@10 {info.recall_at_10:.3f} on {info.recall_queries} stored vectors)")
        results.update(nlist=info.nlist, tuned_nprobe=info.nprobe, self_measured_recall=info.recall_at_10,
                       ivf_lists_rule=ivf_lists(count))
        for nprobe in sorted({p for p in args.nprobe if p <= info.nlist} | {info.nprobe}):
            params_ivf = faiss.SearchParametersIVF(nprobe=nprobe)
            found = ivf.search(queries, RECALL_K, params=params_ivf)[1]
            name = f"ivf nprobe={nprobe}"
            names[name] = {"index": "IVF-Flat, omnibind's tuned nprobe" if nprobe == info.nprobe else "IVF-Flat",
                           "settings": f"nlist={info.nlist}, nprobe={nprobe}", "nlist": info.nlist, "nprobe": nprobe,
                           "recall_at_10": recall(found, truth), "build_s": build_s,
                           "ram_bytes_per_vector": 4 * dim + 8 + info.nlist * dim * 4 / count,
                           "disk_bytes_per_vector": 4 * dim + 8 + info.nlist * dim * 4 / count}
            searches[name] = lambda q, p=params_ivf: ivf.search(q, RECALL_K, params=p)
    timed = queries[: args.latency_queries]
    faiss.omp_set_num_threads(1)  # a single query runs on one thread; no idle worker spins beside it
    rows = latency_rows(names, interleaved_latencies_ms(searches, timed), count, "warm")
    if args.cold:  # after the warm rows, whose files it leaves out of memory
        rows += cold_rows(args, work, names, searches, files, queries, count)
        results.update(cold_queries=min(args.cold_queries, len(queries)), cold_scope=args.cold_scope,
                       eviction=pagecache.METHOD)
    faiss.omp_set_num_threads(args.threads)
    results.update(latency_queries=len(timed), rows=rows)
    print_table(results, console)
    console.print(f"written: {bench_results.save('search_scale', results, args.json)}")
    return results


def build_settings(params: ann.AnnParams) -> dict[str, int]:
    """The build settings a row names beside its search settings: HNSW's efConstruction."""
    return {"ef_construction": params.ef_construction or ann.EF_CONSTRUCTION} if params.kind == ann.HNSW else {}


def ann_settings(params: ann.AnnParams) -> list[tuple[str, dict[str, int]]]:
    """The tuned settings of an index, with one cheaper and one more thorough setting beside them."""
    if params.kind == ann.HNSW:
        ef = params.ef_search or ann.EF_SEARCH[0]
        return [(f", efSearch={v}" + (" (tuned)" if v == ef else ""), {"ef_search": v})
                for v in sorted({max(ann.RECALL_K, ef // 2), ef, 2 * ef})]
    nprobe, factor = params.nprobe or 1, params.k_factor or 1
    return [(f", nprobe={v}, {factor}×k re-ranked" + (" (tuned)" if v == nprobe else ""),
             {"nprobe": v, "k_factor": factor})
            for v in sorted({max(1, nprobe // 2), nprobe, min(2 * nprobe, params.nlist or nprobe)})]


def print_table(results: dict[str, Any], console: Console) -> None:
    table = Table(title=f"{results['n']:,} {results['data']} vectors ({results['data_case']}), D={results['dim']}, "
                        f"top-10, {results['queries']} recall queries, {results['latency_queries']} timed single "
                        f"queries (1 thread), built with {results['threads']} threads")
    cold = "cold_queries" in results
    columns = ("index", "settings", *(("cache",) if cold else ()), "recall@10", "p50 ms", "p99 ms", "speed-up (p50)",
               "build s", "RAM B/vec", "disk B/vec")
    for column in columns:
        table.add_column(column, justify="left" if column in ("index", "settings", "cache") else "right")
    for r in results["rows"]:
        table.add_row(r["index"], r["settings"], *((r["cache"],) if cold else ()), f"{r['recall_at_10']:.3f}",
                      f"{r['p50_ms']:.2f}", f"{r['p99_ms']:.2f}", f"{r['speedup_p50']:.1f}×", f"{r['build_s']:.1f}",
                      f"{r['ram_bytes_per_vector']:.0f}", f"{r['disk_bytes_per_vector']:.0f}")
    console.print(table)
    if cold:
        where = results["storage"]
        disk = ", ".join(f"{key} {where[key]}" for key in ("source", "fstype", "block_device", "rotational", "model")
                         if key in where)
        left = max(r["resident_after_evict_bytes_max"] for r in results["rows"] if r["cache"] == "cold")
        console.print(f"cold rows: {results['cold_queries']} single queries each, the row's files evicted from "
                      f"memory before every one (speed-up against cold exact search; at most {left / 2**10:.0f} KiB "
                      f"of a row's files stayed cached after an eviction); files on {disk}.")
    if "tuned_nprobe" in results:
        tuned, nlist = results["tuned_nprobe"], results["nlist"]
        verdict = "omnibind keeps this IVF index" if 2 * tuned <= nlist else \
            "omnibind would fall back to exact search (the IVF index probes over half its cells)"
        console.print(f"IVF-Flat: omnibind tuned nprobe={tuned} of nlist={nlist} for target recall@10 "
                      f"{results['target_recall']} (self-measured {results['self_measured_recall']:.3f} on stored "
                      f"vectors, each left out of its own results): {verdict}.")
    console.print("Recall@10 in the table is on fresh queries against exact search; RAM B/vec is what a search "
                  "keeps in memory (HNSW: graph and vectors; IVF-PQ: codes, the full vectors stay on disk for "
                  "re-ranking), disk B/vec what the index folder holds.")


if __name__ == "__main__":
    main()
