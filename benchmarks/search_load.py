"""PYTHONPATH=src python benchmarks/search_load.py [--clients 8] [--seconds 20] [--upload-share 0.25]
[--index IDX] [--model-size Ti/16|tiny] [--items 200] [--baseline SRC] [--json results.json]

Load test of `omnibind serve` over loopback: the server runs as its own process on 127.0.0.1 (a free port), and
N concurrent clients (asyncio + httpx, one connection each) send POST /search back to back for a fixed time:
text queries as JSON (--text-queries: 16 sample texts, which the server caches, or each one new, so that every
text is embedded), and picture and sound uploads as multipart (--upload-share of the requests; --uploads: the
same 8 files, or each one made new so that every upload is decoded and embedded). Reports
requests, errors (any exception or non-200 answer), throughput and p50/p90/p99/max latency per query kind.
Without --index it first builds a demo index in a temporary folder: an untrained model (--model-size; weights do
not change the cost) over --items synthetic pictures and tones. With --baseline SRC (the `src` folder of another
checkout, e.g. `git archive 0ee3b1a | tar -x -C /tmp/baseline` then /tmp/baseline/src), the same load runs first
against a server of that code, then against this one, on the same index, and the table compares them.
Client count and duration are bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_results lives beside this script
import bench_results

MAX_CLIENTS, MAX_SECONDS = 64, 300
HOST = "127.0.0.1"  # loopback only
QUERIES = ["a dog on a beach", "a red circle", "the sound of a piano", "a green triangle on white", "a city at night",
           "a low hum", "a blue square", "birds singing", "an astronaut", "a cup of coffee", "a high whistle",
           "a purple shape", "a bell ringing", "a big orange ball", "a small black triangle", "music"]
TINY = dict(width=32, depth=1, heads=2, mlp_dim=64)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    description = __doc__.split("\n\n")[1]
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--clients", type=int, default=8, help=f"concurrent clients, 1–{MAX_CLIENTS} (default 8)")
    parser.add_argument("--seconds", type=float, default=20.0, help=f"test duration, 1–{MAX_SECONDS} s (default 20)")
    parser.add_argument("--upload-share", type=float, default=0.25, help="share of upload queries (default 0.25)")
    parser.add_argument("--index", type=Path, default=None, help="an existing index (default: build a demo one)")
    parser.add_argument("--model-size", choices=("Ti/16", "tiny"), default="Ti/16",
                        help="demo model: Ti/16 (224 px, 10 s audio) or tiny (32 px, for tests)")
    parser.add_argument("--items", type=int, default=200, help="demo index size (default 200)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runtime", default="auto",
                        help="inference path of the demo index, as `omnibind index --runtime` (default auto: bf16 "
                             "where the CPU has it); the server answers on the index's path")
    parser.add_argument("--text-queries", choices=("repeated", "unique"), default="repeated",
                        help="repeated: the 16 sample queries (cached by the server after their first time); "
                             "unique: each text made new with a number, so that every one is embedded")
    parser.add_argument("--uploads", choices=("repeated", "unique"), default="repeated",
                        help="repeated: 4 indexed pictures and 4 sounds sent again and again (a server may answer "
                             "them from a cache); unique: each made new with a few bytes of padding the decoders "
                             "ignore, so that every upload is decoded and embedded")
    parser.add_argument("--baseline", type=Path, default=None,
                        help="src folder of another version to run the same load against first, for comparison")
    parser.add_argument("--json", type=Path, default=None, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    if not 1 <= args.clients <= MAX_CLIENTS:
        parser.error(f"--clients must be between 1 and {MAX_CLIENTS}")
    if not 1 <= args.seconds <= MAX_SECONDS:
        parser.error(f"--seconds must be between 1 and {MAX_SECONDS}")
    if not 0 <= args.upload_share <= 1 or args.items < 4:
        parser.error("--upload-share must be in [0, 1] and --items at least 4")
    if args.baseline is not None and not (args.baseline / "omnibind" / "__init__.py").is_file():
        parser.error(f"--baseline {args.baseline}: not a src folder holding the omnibind package")
    return args


# ------------------------------------------------------------------------------------------------ demo index


def build_demo_index(folder: Path, size: str, items: int, seed: int, console: Console, runtime: str = "auto") -> Path:
    """An untrained model and an index over synthetic drawings and tones, embedded on `runtime` as `omnibind index
    --runtime` would (the index records it and `serve` answers on it); returns the index folder."""
    import soundfile
    import torch
    from PIL import Image, ImageDraw

    import omnibind
    from omnibind.preprocess.text import Tokenizer, train_tokenizer
    from omnibind.runtime import apply_runtime
    from omnibind.search import update_index

    rng = np.random.default_rng(seed)
    media = folder / "media"
    media.mkdir(parents=True)
    sounds = max(1, items // 5)
    for i in range(items - sounds):
        image = Image.new("RGB", (160, 120), tuple(int(c) for c in rng.integers(180, 256, 3)))
        box = sorted(rng.integers(5, 115, 2).tolist())
        ImageDraw.Draw(image).ellipse((box[0], box[0], box[1] + 40, box[1]), fill=tuple(rng.integers(0, 180, 3)))
        image.save(media / f"picture{i:04d}.png")
    t = np.arange(16000) / 16000
    for i in range(sounds):
        wave = 0.4 * np.exp(-4 * t) * np.sin(2 * np.pi * rng.uniform(100, 2000) * t)
        soundfile.write(media / f"tone{i:04d}.wav", wave.astype(np.float32), 16000)
    spiece = train_tokenizer(QUERIES * 50, folder / "spiece", vocab_size=60)
    torch.manual_seed(seed)
    vocab = Tokenizer(spiece).vocab_size
    if size == "tiny":
        model = omnibind.create("Ti/16", tokenizer=spiece, embed_dim=32, image=dict(TINY, image_size=32, patch_size=8),
                                text=dict(TINY, vocab_size=vocab, max_len=16),
                                audio=dict(TINY, n_mels=32, clip_seconds=1.28, patch_size=8))
    else:
        model = omnibind.create("Ti/16", tokenizer=spiece, text={"vocab_size": vocab})
    checkpoint = omnibind.save(model, folder / "model")
    start = time.perf_counter()
    loaded = omnibind.load(checkpoint)
    apply_runtime(loaded, runtime)
    report = update_index(folder / "index", media, loaded, checkpoint)
    console.print(f"demo index: {report.added} items embedded with an untrained {size} model on runtime {runtime} "
                  f"in {time.perf_counter() - start:.1f} s")
    return folder / "index"


Sample = tuple[str, bytes, str, str]  # name, bytes, content type, modality


def upload_samples(index: Path, per_modality: int = 4) -> list[Sample]:
    """A few indexed pictures and sounds to upload as queries."""
    import mimetypes
    import sqlite3

    samples = []
    with sqlite3.connect(f"file:{index / 'index.sqlite'}?mode=ro", uri=True) as db:
        for modality in ("image", "audio"):
            rows = db.execute("SELECT path FROM items WHERE modality = ? ORDER BY id LIMIT ?", (modality, per_modality))
            for (path,) in rows:
                kind = mimetypes.guess_type(path)[0] or "application/octet-stream"
                samples.append((Path(path).name, Path(path).read_bytes(), kind, modality))
    return samples


def padded(data: bytes, tag: int) -> bytes:
    """The same picture or sound with 8 bytes its decoders ignore: after a PNG's IEND, or in a RIFF JUNK chunk at
    the end of a WAV (its RIFF size updated); other files get the bytes appended."""
    extra = tag.to_bytes(8, "little")
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        body = data + b"JUNK" + len(extra).to_bytes(4, "little") + extra
        return body[:4] + (len(body) - 8).to_bytes(4, "little") + body[8:]
    return data + extra


# ---------------------------------------------------------------------------------------------------- server


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


OWN_SRC = Path(__file__).resolve().parents[1] / "src"


def start_server(index: Path, port: int, log: Path, src: Path = OWN_SRC) -> subprocess.Popen:
    """`omnibind serve` of the code in `src`, in its own process, on loopback."""
    command = [sys.executable, "-m", "omnibind.cli", "serve", str(index), "--host", HOST, "--port", str(port),
               "--device", "cpu"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")]))
    with log.open("wb") as output:
        return subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env)


def wait_until_healthy(url: str, process: subprocess.Popen, log: Path, timeout: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}: {log.read_text()[-2000:]}")
        try:
            response = httpx.get(f"{url}/health", timeout=2.0)
            if response.status_code == 200:
                return response.json()
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the server did not answer /health within {timeout:.0f} s")


def stop_server(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


# ------------------------------------------------------------------------------------------------------ load


async def client_loop(client: httpx.AsyncClient, deadline: float, rng: random.Random, upload_share: float,
                      samples: list[Sample], records: list[tuple[str, float, bool, str]],
                      unique_text: bool = False, unique_uploads: bool = False) -> None:
    """Send searches back to back until the deadline; record (kind, seconds, ok, error) for each (a unique text
    gets a number appended, so that the server cannot answer it from its cache)."""
    while time.monotonic() < deadline:
        if samples and rng.random() < upload_share:
            name, data, kind, modality = rng.choice(samples)
            if unique_uploads:
                data = padded(data, rng.randrange(2**63))
            label = f"{modality} upload"
            request = dict(files={"file": (name, data, kind)}, data={"k": "12"})
        else:
            text = rng.choice(QUERIES) + (f" {rng.randrange(10**9)}" if unique_text else "")
            label, request = "text", dict(json={"text": text, "k": 12})
        start = time.perf_counter()
        try:
            response = await client.post("/search", **request)
            ok, error = response.status_code == 200, "" if response.status_code == 200 else str(response.status_code)
        except httpx.HTTPError as err:
            ok, error = False, type(err).__name__
        records.append((label, time.perf_counter() - start, ok, error))


async def run_load(url: str, clients: int, seconds: float, upload_share: float, samples: list[Sample], seed: int,
                   unique_text: bool = False, unique_uploads: bool = False,
                   ) -> tuple[list[tuple[str, float, bool, str]], float]:
    records: list[tuple[str, float, bool, str]] = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=60.0, limits=limits) as client:
        start = time.monotonic()
        deadline = start + seconds
        await asyncio.gather(*(client_loop(client, deadline, random.Random(seed + i), upload_share, samples, records,
                                           unique_text, unique_uploads) for i in range(clients)))
        elapsed = time.monotonic() - start
    return records, elapsed


def summarise(records: list[tuple[str, float, bool, str]], elapsed: float) -> list[dict[str, Any]]:
    rows = []
    kinds = sorted({r[0] for r in records})
    for kind in [*kinds, "all"]:
        chosen = [r for r in records if kind in (r[0], "all")]
        if not chosen:
            continue
        ms = np.array([r[1] for r in chosen]) * 1000
        errors = [r[3] for r in chosen if not r[2]]
        rows.append({"kind": kind, "requests": len(chosen), "errors": len(errors), "error_kinds": sorted(set(errors)),
                     "requests_per_s": len(chosen) / elapsed, "p50_ms": float(np.percentile(ms, 50)),
                     "p90_ms": float(np.percentile(ms, 90)), "p99_ms": float(np.percentile(ms, 99)),
                     "max_ms": float(ms.max())})
    return rows


def serve_and_load(src: Path, index: Path, work: Path, samples: list[Sample], args: argparse.Namespace,
                   console: Console) -> tuple[dict[str, Any], list[tuple[str, float, bool, str]], float]:
    """Start a server of the code in `src`, run the load against it, stop it."""
    port = free_port()
    url = f"http://{HOST}:{port}"
    log = work / f"server-{port}.log"
    process = start_server(index, port, log, src)
    try:
        health = wait_until_healthy(url, process, log)
        console.print(f"server ({src}) up at {url}: {health['items']} items, model {health['model']}; "
                      f"{args.clients} clients for {args.seconds:g} s")
        usable = [s for s in samples if s[3] in health["query_modalities"]]
        records, elapsed = asyncio.run(run_load(url, args.clients, args.seconds, args.upload_share, usable, args.seed,
                                                args.text_queries == "unique", args.uploads == "unique"))
    finally:
        stop_server(process)
    return health, records, elapsed


def main(argv: Sequence[str] | None = None, console: Console | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    console = console or Console(width=150)
    runs: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="omnibind-load-") as temp:
        work = Path(temp)
        index = args.index or build_demo_index(work / "demo", args.model_size, args.items, args.seed, console,
                                                        args.runtime)
        samples = upload_samples(index) if args.upload_share > 0 else []
        versions = ([("baseline", args.baseline.resolve())] if args.baseline else []) + [("this change", OWN_SRC)]
        for label, src in versions:
            health, records, elapsed = serve_and_load(src, index, work, samples, args, console)
            runs[label] = {"src": str(src), "elapsed_s": elapsed, "rows": summarise(records, elapsed)}
    current = runs["this change"]
    results = {
        "setup": "server and clients on the same machine, sharing its cores",
        "clients": args.clients, "seconds": args.seconds, "elapsed_s": current["elapsed_s"],
        "text_queries": args.text_queries, "uploads": args.uploads,
        "upload_share": args.upload_share, "items": health["items"], "model": health["model"],
        "model_size": None if args.index else args.model_size, "rows": current["rows"],
    }
    if args.baseline:
        results["baseline"] = runs["baseline"]
        results["comparison"] = compare(runs["baseline"]["rows"], current["rows"])
    print_table(results, console)
    if args.json is not None:  # only when asked: the tests run this script without it
        console.print(f"written: {bench_results.save('search_load', results, args.json)}")
    return results


def compare(baseline: list[dict[str, Any]], current: list[dict[str, Any]]) -> dict[str, Any]:
    """The change against the baseline: throughput ratio, text p50 of both, errors of both."""
    before, after = {r["kind"]: r for r in baseline}, {r["kind"]: r for r in current}
    text_before, text_after = before.get("text", {}), after.get("text", {})
    return {"throughput_ratio": after["all"]["requests_per_s"] / max(before["all"]["requests_per_s"], 1e-9),
            "text_p50_ms": {"baseline": text_before.get("p50_ms"), "this change": text_after.get("p50_ms")},
            "errors": {"baseline": before["all"]["errors"], "this change": after["all"]["errors"]}}


def print_table(results: dict[str, Any], console: Console) -> None:
    model = f"untrained {results['model_size']} demo model" if results["model_size"] else results["model"]
    table = Table(title=f"omnibind serve on {HOST}: {results['clients']} concurrent clients for "
                        f"{results['elapsed_s']:.1f} s, {results['items']} items, {model}")
    for column in ("query", "requests", "errors", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms"):
        table.add_column(column, justify="left" if column == "query" else "right")
    versions = [("baseline", results["baseline"]["rows"])] if "baseline" in results else []
    for version, rows in [*versions, ("this change" if versions else "", results["rows"])]:
        for r in rows:
            kind = f"{version}: {r['kind']}" if version else r["kind"]
            table.add_row(kind, str(r["requests"]), str(r["errors"]), f"{r['requests_per_s']:.1f}",
                          f"{r['p50_ms']:.1f}", f"{r['p90_ms']:.1f}", f"{r['p99_ms']:.1f}", f"{r['max_ms']:.1f}")
    console.print(table)
    if "comparison" in results:
        c = results["comparison"]
        p50 = c["text_p50_ms"]
        text = f"; text p50 {p50['baseline']:.1f} → {p50['this change']:.1f} ms" if None not in p50.values() else ""
        console.print(f"throughput {c['throughput_ratio']:.2f}× the baseline{text}; errors "
                      f"{c['errors']['baseline']} → {c['errors']['this change']}")


if __name__ == "__main__":
    main()
