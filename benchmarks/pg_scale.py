"""PYTHONPATH=src python benchmarks/pg_scale.py [--n 1000000] [--dim 768] [--data random|clustered|real]
[--embeddings DIR --modality image --query-modality text] [--queries 500] [--latency-queries 200]
[--ef-search 40,64,100,200,400] [--exact-up-to 100000] [--exact-queries 20] [--maintenance-work-mem 4GB]
[--shared-buffers 2GB] [--work DIR] [--seed 0] [--json PATH]

Load time, HNSW build time, bytes per vector, single-query latency (p50/p99) and recall@10 against exact search
of omnibind's server store (PostgreSQL + pgvector) on N stored vectors, in a throwaway cluster of its own:

  load     N rows into the tables `omnibind index --store` makes (PgStore: the items with their primary key,
           unique path and modality indexes), streamed by binary COPY in chunks of 100,000, one transaction each,
           then ANALYZE (timed apart);
  build    the modality's HNSW index as omnibind builds it at the end of a run (PgStore.build_hnsw: m=16,
           ef_construction=64, vector_ip_ops, partial on the modality), with the server's maintenance_work_mem
           set to --maintenance-work-mem (default 4GB: the graph of 1M × 768 fits; pgvector builds much more
           slowly once it does not, and the notice saying so is kept in the results);
  search   one query at a time through psycopg, with the statement and session settings of a serve process
           (omnibind.search.pgstore: nearest_statement, prepare_session), one connection per hnsw.ef_search
           value: recall@10 of --queries fresh queries against exact search (faiss' flat inner-product scan over
           the same vectors, merged chunk by chunk while loading), then latency of the first --latency-queries,
           warm, the ef_search values taking turns on every query;
  exact    for reference, where N <= --exact-up-to: the same statement with index scans off (a sequential scan
           and top-10 sort in PostgreSQL) over the first --exact-queries queries.

The data: random or clustered unit vectors drawn exactly as benchmarks/search_scale.py draws them (the same
--n, --dim, --queries and --seed give the same vectors and queries, so the two compare), or (--data real)
--embeddings DIR: the first N --modality vectors of an `omnibind embed-dataset` folder, queried with its first
--queries --query-modality vectors. The cluster lives in a temporary folder under --work (default /tmp) and is
deleted at the end; it runs without fsync (nothing in it is kept), which speeds up loading, not searching.
Results go to benchmarks/results/ as JSON with the machine (or --json PATH); a table is printed.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from rich.console import Console
from rich.table import Table

from omnibind.search import pgcluster, pgstore
from omnibind.search.pgstore import ITEMS, PgStore, nearest_statement

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_results and search_scale live beside this script
import bench_results
import search_scale

RECALL_K = 10
EF_SEARCH = "40,64,100,200,400"
COPY_TYPES = ("text", "text", "int8", "int8", "text", "jsonb", "float8", "vector")  # ITEM_COLUMNS[1:], vector
MAX_DIM = 2000  # pgvector's HNSW index takes vectors of at most 2,000 dimensions
SIZE = re.compile(r"[1-9]\d{0,5}(kB|MB|GB)")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line, bounded: a clear argparse error for any value out of range."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[1],
                                     formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000, help="stored vectors (default 1,000,000)")
    parser.add_argument("--dim", type=int, default=768, help="dimension of random or clustered data (768)")
    parser.add_argument("--data", choices=("random", "clustered", "real"), default="random",
                        help="real: --embeddings DIR (given --embeddings, real is implied)")
    parser.add_argument("--embeddings", type=Path, help="a folder written by omnibind embed-dataset")
    parser.add_argument("--modality", default="image", help="--embeddings: the modality stored (image)")
    parser.add_argument("--query-modality", default="text", help="--embeddings: the modality of queries (text)")
    parser.add_argument("--queries", type=int, default=500, help="fresh queries for recall@10 (500)")
    parser.add_argument("--latency-queries", type=int, default=200, help="single queries timed per ef_search (200)")
    parser.add_argument("--ef-search", default=EF_SEARCH, help=f"hnsw.ef_search values to sweep ({EF_SEARCH})")
    parser.add_argument("--exact-up-to", type=int, default=100_000,
                        help="measure exact search in PostgreSQL too when N is at most this (100,000; 0: never)")
    parser.add_argument("--exact-queries", type=int, default=20, help="queries of exact search in PostgreSQL (20)")
    parser.add_argument("--maintenance-work-mem", default="4GB", help="the server's maintenance_work_mem for the "
                                                                      "HNSW build (4GB)")
    parser.add_argument("--shared-buffers", default="2GB", help="the server's shared_buffers (2GB)")
    parser.add_argument("--work", type=Path, help="folder to make the cluster's temporary folder in (/tmp)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None,
                        help="where to write the results (default: a new file under benchmarks/results/)")
    args = parser.parse_args(argv)
    check_args(parser, args)
    return args


def check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse values out of bounds (argparse's error: usage, message, exit status 2)."""
    if args.embeddings is not None:
        args.data = "real"
    bounds = (("--n", args.n, 1000, 100_000_000), ("--dim", args.dim, 2, MAX_DIM),
              ("--queries", args.queries, 1, 10_000), ("--latency-queries", args.latency_queries, 1, args.queries),
              ("--exact-up-to", args.exact_up_to, 0, 10_000_000), ("--exact-queries", args.exact_queries, 1, 1000))
    for flag, value, low, high in bounds:
        if not low <= value <= high:
            parser.error(f"{flag} must be from {low:,} to {high:,} (got {value:,})")
    if args.data == "real" and args.embeddings is None:
        parser.error("--data real needs --embeddings DIR (a folder written by omnibind embed-dataset)")
    if args.embeddings is not None and not args.embeddings.is_dir():
        parser.error(f"--embeddings {args.embeddings}: no such folder")
    try:
        args.ef_search = sorted({int(v) for v in args.ef_search.split(",") if v.strip()})
    except ValueError:
        parser.error("--ef-search must be comma-separated integers")
    if not args.ef_search or not all(RECALL_K <= v <= pgstore.MAX_EF_SEARCH for v in args.ef_search):
        parser.error(f"--ef-search values must be from {RECALL_K} (k) to {pgstore.MAX_EF_SEARCH} (pgvector's limit)")
    for flag, value in (("--maintenance-work-mem", args.maintenance_work_mem), ("--shared-buffers",
                                                                               args.shared_buffers)):
        if not SIZE.fullmatch(value):
            parser.error(f"{flag} must be a size such as 512MB or 4GB (kB, MB or GB; got {value!r})")
    if args.work is not None and not args.work.is_dir():
        parser.error(f"--work {args.work}: no such folder")


def source_data(args: argparse.Namespace) -> tuple[Iterator[np.ndarray], np.ndarray, dict[str, Any]]:
    """Chunks of the stored vectors, the measured queries, and how they were made (search_scale's definitions)."""
    drawn = argparse.Namespace(n=args.n, dim=args.dim, data=args.data, seed=args.seed, queries=args.queries,
                               embeddings=args.embeddings, modality=args.modality,
                               query_modality=args.query_modality)
    if args.data == "real":
        chunks, queries, source = search_scale.embedded_folder(drawn)
    else:
        chunks, queries, source = search_scale.synthetic(drawn)
    return chunks, np.ascontiguousarray(queries[: args.queries], dtype=np.float32), source


class ExactTopK:
    """The exact top-k (inner product) of every query over vectors seen chunk by chunk, merged in faiss' result
    heap as `omnibind.scale.ann.exact_rows` merges its chunks; memory: queries × k."""

    def __init__(self, queries: np.ndarray, k: int) -> None:
        self.queries, self.k, self.seen = queries, k, 0
        self.heap = faiss.ResultHeap(len(queries), k, keep_max=True)

    def add(self, block: np.ndarray) -> None:
        """Merge one chunk's best hits (ids count from 1, in the order the rows were loaded)."""
        scores, rows = faiss.knn(self.queries, block, min(self.k, len(block)), faiss.METRIC_INNER_PRODUCT)
        self.heap.add_result(scores, np.where(rows >= 0, rows + self.seen + 1, -1))
        self.seen += len(block)

    def ids(self) -> np.ndarray:
        """Each query's k best ids, best first (call once every chunk is added)."""
        self.heap.finalize()
        return np.asarray(self.heap.I, dtype=np.int64)


def copy_chunk(store: PgStore, block: np.ndarray, first: int, modality: str) -> None:
    """Append one chunk of rows to the items table by binary COPY, in one transaction (as a run's batch)."""
    from psycopg.types.json import Jsonb

    columns = ", ".join([*pgstore.ITEM_COLUMNS[1:], "vector"])
    now, meta = time.time(), Jsonb({})
    with store.transaction(bump=False) as db, db.cursor() as cursor, \
            cursor.copy(f"COPY {ITEMS} ({columns}) FROM STDIN WITH (FORMAT BINARY)") as copy:
        copy.set_types(list(COPY_TYPES))
        for i, vector in enumerate(block):
            copy.write_row((f"/pg_scale/{first + i}", modality, 0, 0, "", meta, now, vector))


def load(store: PgStore, chunks: Iterator[np.ndarray], truth: ExactTopK, modality: str, console: Console
         ) -> dict[str, float]:
    """Stream every chunk into the table and into the exact top-k; seconds spent in COPY, in ANALYZE, in truth."""
    spent = {"load_s": 0.0, "truth_s": 0.0}
    for block in chunks:
        block = np.ascontiguousarray(block, dtype=np.float32)
        start = time.perf_counter()
        copy_chunk(store, block, truth.seen, modality)
        middle = time.perf_counter()
        truth.add(block)
        spent["load_s"] += middle - start
        spent["truth_s"] += time.perf_counter() - middle
        console.print(f"loaded {truth.seen:,} rows ({truth.seen / spent['load_s']:.0f}/s)")
    start = time.perf_counter()
    with store.transaction(bump=False) as db:
        db.execute(f"ANALYZE {ITEMS}")
        low, high, count = db.execute(f"SELECT min(id), max(id), count(*) FROM {ITEMS}").fetchone() or (0, 0, 0)
    spent["analyze_s"] = time.perf_counter() - start
    if (low, high, count) != (1, truth.seen, truth.seen):  # exact search numbers the rows 1..N in load order
        raise SystemExit(f"ids {low}..{high} of {count} rows: expected 1..{truth.seen} in load order")
    return spent


def build(store: PgStore) -> dict[str, Any]:
    """omnibind's HNSW build of the table (PgStore.build_hnsw), timed, with pgvector's notices (e.g. that the
    graph outgrew maintenance_work_mem)."""
    notices: list[str] = []
    with store.transaction(bump=False) as db:
        db.add_notice_handler(lambda d: notices.append(f"{d.message_primary} {d.message_detail or ''}".strip()))
    start = time.perf_counter()
    built = store.build_hnsw()
    return {"build_s": time.perf_counter() - start, "built": built, "build_notices": notices}


def sizes(conn: Any, modality: str, count: int) -> dict[str, float]:
    """Bytes per stored vector: the table (with its TOAST, where vectors over 2 kB go), the HNSW index, and the
    other indexes (primary key, unique path, modality)."""
    table, hnsw, indexes = conn.execute("SELECT pg_table_size(%s), pg_relation_size(%s), pg_indexes_size(%s)",
                                        (ITEMS, pgstore.hnsw_index_name(modality), ITEMS)).fetchone()
    return {"table_bytes_per_vector": table / count, "hnsw_bytes_per_vector": hnsw / count,
            "other_index_bytes_per_vector": (indexes - hnsw) / count,
            "total_bytes_per_vector": (table + indexes) / count}


def session(url: str, ef_search: int, exact: bool = False) -> Any:
    """A connection set up as a serve process's (at this ef_search); `exact` turns index scans off."""
    import psycopg

    conn = psycopg.connect(url, autocommit=True, application_name="pg_scale")
    pgstore.prepare_session(conn, ef_search)
    if exact:
        conn.execute("SET enable_indexscan = off")
        conn.execute("SET enable_bitmapscan = off")
    return conn


def searcher(conn: Any, modality: str) -> Callable[[np.ndarray], list[int]]:
    """One k-nearest query through this connection, as PgStore.nearest sends it (one round trip); the ids."""
    statement = nearest_statement(modality)

    def search(query: np.ndarray) -> list[int]:
        vector = query.reshape(-1)  # one query, as a row or a (1, D) block
        return [int(row[0]) for row in conn.execute(statement, (vector, vector, RECALL_K)).fetchall()]

    return search


def hnsw_rows(url: str, args: argparse.Namespace, queries: np.ndarray, truth: np.ndarray, modality: str,
              console: Console) -> list[dict[str, Any]]:
    """Recall@10 and warm latency of the HNSW search at each ef_search."""
    conns = {ef: session(url, ef) for ef in args.ef_search}
    try:
        searches = {f"ef_search={ef}": searcher(conn, modality) for ef, conn in conns.items()}
        found = {name: [search(q) for q in queries] for name, search in searches.items()}  # also warms the caches
        console.print(f"recall pass: {len(queries)} queries × {len(searches)} ef_search values")
        times = search_scale.interleaved_latencies_ms(searches, queries[: args.latency_queries])
    finally:
        for conn in conns.values():
            conn.close()
    return [{"index": "HNSW (pgvector)", "ef_search": ef, "recall_at_10": search_scale.recall(found[name], truth),
             "p50_ms": float(np.percentile(times[name], 50)), "p99_ms": float(np.percentile(times[name], 99)),
             "timed_queries": len(times[name])} for ef, name in zip(args.ef_search, searches, strict=True)]


def exact_row(url: str, args: argparse.Namespace, queries: np.ndarray, truth: np.ndarray, modality: str
              ) -> dict[str, Any]:
    """Recall@10 and latency of exact search inside PostgreSQL (a sequential scan), over the first queries."""
    conn = session(url, args.ef_search[0], exact=True)
    try:
        search = searcher(conn, modality)
        plan = "\n".join(row[0] for row in conn.execute(
            "EXPLAIN " + nearest_statement(modality).as_string(conn), (queries[0], queries[0], RECALL_K)))
        asked = queries[: args.exact_queries]
        search(asked[0])  # warm-up
        found, times = [], []
        for query in asked:
            start = time.perf_counter()
            found.append(search(query))
            times.append((time.perf_counter() - start) * 1000)
    finally:
        conn.close()
    if "hnsw" in plan:
        raise SystemExit(f"exact search in PostgreSQL still used the HNSW index:\n{plan}")
    return {"index": "exact (sequential scan in PostgreSQL)", "ef_search": None,
            "recall_at_10": search_scale.recall(found, truth[: len(asked)]),
            "p50_ms": float(np.percentile(times, 50)), "p99_ms": float(np.percentile(times, 99)),
            "timed_queries": len(times)}


def server_info(url: str) -> dict[str, Any]:
    """The server's version, pgvector's, and the settings that bear on loading, building and searching."""
    import psycopg

    names = ("shared_buffers", "maintenance_work_mem", "work_mem", "max_parallel_maintenance_workers",
             "max_parallel_workers_per_gather", "fsync", "effective_cache_size")
    with psycopg.connect(url, autocommit=True) as conn:
        def value(query: str) -> Any:
            row = conn.execute(query).fetchone()
            return None if row is None else row[0]

        return {"postgres": value("SHOW server_version"),
                "pgvector": value("SELECT extversion FROM pg_extension WHERE extname = 'vector'"),
                "settings": {name: value(f"SHOW {name}") for name in names}}


def main(argv: Sequence[str] | None = None, console: Console | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    console = console or Console(width=160)
    settings = f"-c shared_buffers={args.shared_buffers} -c maintenance_work_mem={args.maintenance_work_mem}"
    cluster = pgcluster.start(settings, args.work)
    if isinstance(cluster, str):
        raise SystemExit(cluster)
    try:
        missing = pgcluster.pgvector_missing(cluster)
        if missing:
            raise SystemExit(missing)
        return run(args, pgcluster.create_database(cluster, "pg_scale"), console)
    finally:
        pgcluster.stop(cluster)


def run(args: argparse.Namespace, url: str, console: Console) -> dict[str, Any]:
    """Load, build, measure; print the table and save the JSON."""
    chunks, queries, source = source_data(args)
    dim = queries.shape[1]
    modality = args.modality if args.data == "real" else search_scale.MODALITY
    truth = ExactTopK(queries, RECALL_K)
    store = PgStore(url, {"model": {"embed_dim": dim}})  # the tables as `omnibind index --store` makes them
    try:
        spent = load(store, chunks, truth, modality, console)
        built = build(store)
        console.print(f"built the HNSW index in {built['build_s']:.1f} s")
        with store.transaction(bump=False) as db:
            measured = sizes(db, modality, truth.seen)
    finally:
        store.close()
    results: dict[str, Any] = {
        **server_info(url), "data": args.data, "data_case": search_scale.DATA_CASES[args.data], **source,
        "n": truth.seen, "dim": dim, "modality": modality, "queries": len(queries), "seed": args.seed,
        "hnsw": {"m": pgstore.HNSW_M, "ef_construction": pgstore.HNSW_EF_CONSTRUCTION, "opclass": "vector_ip_ops"},
        **spent, **built, **measured}
    best = truth.ids()
    rows = hnsw_rows(url, args, queries, best, modality, console)
    if truth.seen <= args.exact_up_to:
        rows.append(exact_row(url, args, queries, best, modality))
    results.update(latency_queries=min(args.latency_queries, len(queries)), rows=rows)
    print_table(results, console)
    console.print(f"written: {bench_results.save('pg_scale', results, args.json)}")
    return results


def print_table(results: dict[str, Any], console: Console) -> None:
    """The rows as a table, with the load, build and size figures under it."""
    table = Table(title=f"{results['n']:,} {results['data']} vectors ({results['data_case']}), D={results['dim']}, "
                        f"top-{RECALL_K}, PostgreSQL {results['postgres']} + pgvector {results['pgvector']}, "
                        f"{results['queries']} recall queries, single queries through psycopg")
    for column in ("search", "ef_search", "recall@10", "p50 ms", "p99 ms", "timed queries"):
        table.add_column(column, justify="left" if column == "search" else "right")
    for row in results["rows"]:
        table.add_row(row["index"], "–" if row["ef_search"] is None else str(row["ef_search"]),
                      f"{row['recall_at_10']:.3f}", f"{row['p50_ms']:.2f}", f"{row['p99_ms']:.2f}",
                      str(row["timed_queries"]))
    console.print(table)
    settings, hnsw = results["settings"], results["hnsw"]
    console.print(f"load (binary COPY) {results['load_s']:.1f} s, ANALYZE {results['analyze_s']:.1f} s, HNSW build "
                  f"(m={hnsw['m']}, ef_construction={hnsw['ef_construction']}, maintenance_work_mem="
                  f"{settings['maintenance_work_mem']}, {settings['max_parallel_maintenance_workers']} parallel "
                  f"workers) {results['build_s']:.1f} s", highlight=False)
    parts = ("table", "table_bytes_per_vector"), ("HNSW index", "hnsw_bytes_per_vector"), \
        ("other indexes", "other_index_bytes_per_vector"), ("total", "total_bytes_per_vector")
    console.print("bytes per vector: " + ", ".join(f"{name} {results[key]:.0f}" for name, key in parts),
                  highlight=False)
    for notice in results["build_notices"]:
        console.print(f"pgvector: {notice}", highlight=False, markup=False)


if __name__ == "__main__":
    main()
