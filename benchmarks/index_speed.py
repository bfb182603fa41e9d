"""PYTHONPATH=src python benchmarks/index_speed.py [--pictures 2000] [--sounds 200]
[--paths fp32,bf16,int8,onnx,onnx-int8] [--embed-paths auto] [--sound-paths fp32,auto] [--batch 32]
[--threads N] [--depth 12] [--demo-model auto] [--eval-limit 1000] [--quality-only] [--json results.json]

End to end on CPU: `omnibind index` (and `omnibind embed`) on a folder of real starter pictures, each as its own
process from start to exit (model load, scan, decode, preprocess, embed, write), against a plain transformers
loop in its own process that decodes the same files with Pillow (transparency over white, as both libraries'
SigLIP preprocessing expects), preprocesses them with transformers' SiglipImageProcessor and embeds them with
SiglipModel in batches, in fp32 and in bf16 (the same reduced precision as omnibind's bf16 path). Both load the
same random-init SigLIP base-patch16-224 checkpoint (the one benchmarks/cpu_inference.py builds). Sounds are
indexed with a B/16-shaped audio tower beside their decode-only time (read, resample, log-mel: what the tower
waits for). The pictures and sounds are the first ones of the starter set's shards (`--data`, `--split`),
written out as files. The ONNX paths' one-time export is done (and timed) before their runs, as a user's first
run would; every run starts with a fresh index.

Quality beside each speed-up: the cosine similarity of each path's `omnibind embed` vectors to fp32's (and of
the transformers loop's to omnibind fp32's, which checks that both embed the same pictures alike), and, for the
trained demo model of `make demo` (`--demo-model`, default the newest checkpoint under runs/starter_cpu), R@1
of every retrieval direction and zero-shot top-1 on the starter test split per path, with the change from fp32
in points, and the cosine of each path's embeddings of that split's pictures, texts and sounds to fp32's
(`--quality-only` measures only these, with no timing). Results go to benchmarks/results/ as JSON with the
machine (or --json PATH).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

import omnibind
import omnibind.modalities as registry
from omnibind.runtime import bf16_supported, resolve

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # bench_results and cpu_inference live beside this script
import bench_results  # noqa: E402
import cpu_inference  # noqa: E402

ROOT = HERE.parent
DEFAULT_DEMO_RUN = ROOT / "runs" / "starter_cpu"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    description = __doc__.split("\n\n")[1]
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "starter", help="starter dataset folder")
    parser.add_argument("--split", default="train", help="split whose shards give the files (default train)")
    parser.add_argument("--pictures", type=int, default=2000, help="pictures to index (default 2000)")
    parser.add_argument("--sounds", type=int, default=200, help="sounds to index (default 200; 0: none)")
    parser.add_argument("--paths", default="fp32,bf16,int8,onnx,onnx-int8", help="--runtime paths for index")
    parser.add_argument("--embed-paths", default="auto", help="--runtime paths for `omnibind embed` (default auto)")
    parser.add_argument("--sound-paths", default="fp32,auto", help="--runtime paths for the sounds' index runs")
    parser.add_argument("--peer-precisions", default="fp32,bf16", help="the transformers loop's dtypes")
    parser.add_argument("--batch", type=int, default=32, help="files per forward pass, every contender (32)")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)), help="threads (all cores)")
    parser.add_argument("--depth", type=int, default=12, help="blocks per tower (default 12, the base model)")
    parser.add_argument("--demo-model", default="auto",
                        help="trained checkpoint for the R@1 / zero-shot change ('auto': newest under "
                             "runs/starter_cpu/checkpoints; 'none': skip)")
    parser.add_argument("--eval-limit", type=int, default=1000, help="test examples evaluated (default 1000)")
    parser.add_argument("--json", type=Path, default=None, help="results file (default: under benchmarks/results/)")
    parser.add_argument("--quality-only", action="store_true",
                        help="only the demo model's quality per path (R@1, zero-shot, cosine to fp32); no timing")
    args = parser.parse_args(argv)
    for name in ("pictures", "batch", "threads", "depth", "eval_limit"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.sounds < 0:
        parser.error("--sounds must be at least 0")
    try:
        for name in ("paths", "embed_paths", "sound_paths"):
            setattr(args, name, list(dict.fromkeys(resolve(p).name for p in getattr(args, name).split(",")
                                                   if p.strip())))
    except omnibind.errors.InputError as err:
        parser.error(str(err))
    args.peer_precisions = [p.strip() for p in args.peer_precisions.split(",") if p.strip()]
    if not set(args.peer_precisions) <= {"fp32", "bf16"}:
        parser.error("--peer-precisions takes fp32 and/or bf16")
    return args


# ----------------------------------------------------------------------------------------------- the files


def extract_media(data: Path, split: str, pictures: int, sounds: int, out: Path) -> dict[str, list[Path]]:
    """The first `pictures` images and `sounds` audio files of the split's shards, written under out/<modality>/."""
    want = {registry.IMAGE.name: pictures, registry.AUDIO.name: sounds}
    found: dict[str, list[Path]] = {m: [] for m in want}
    shards = sorted((data / split).glob("*.tar"))
    if not shards:
        raise SystemExit(f"{data / split}: no .tar shards (expected the starter dataset; run `make demo` first)")
    for shard in shards:
        with tarfile.open(shard) as tar:
            for member in tar:
                modality = registry.modality_of(member.name) if member.isfile() else None
                if modality not in want or len(found[modality]) >= want[modality]:
                    continue
                target = out / modality / Path(member.name).name
                target.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                assert source is not None
                target.write_bytes(source.read())
                found[modality].append(target)
        if all(len(found[m]) >= n for m, n in want.items()):
            break
    for modality, n in want.items():
        if len(found[modality]) < n:
            raise SystemExit(f"{data / split}: only {len(found[modality])} {modality} files, --{modality}s asked "
                             f"for {n}")
    return found


# ----------------------------------------------------------------------------------------------- the runs


def timed(command: list[str], env: dict[str, str]) -> float:
    """Wall-clock seconds of one process from start to exit; its output is shown only when it fails."""
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command[:6])} … failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return seconds


def omnibind_command(*args: object) -> list[str]:
    return [sys.executable, "-m", "omnibind.cli", *(str(a) for a in args)]


def peer_loop(model_dir: Path, files: list[str], precision: str, batch: int, out: Path) -> None:
    """The plain transformers loop (run in its own process by --peer-loop): decode, preprocess, embed."""
    import transformers
    from PIL import Image

    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    model = transformers.SiglipModel.from_pretrained(model_dir, attn_implementation="sdpa").to(dtype).eval()
    size = model.config.vision_config.image_size
    processor = transformers.SiglipImageProcessorPil(size={"height": size, "width": size})
    vectors = []
    with torch.inference_mode():
        for start in range(0, len(files), batch):
            images = []
            for path in files[start : start + batch]:
                with Image.open(path) as image:
                    rgba = image.convert("RGBA")
                    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                    images.append(Image.alpha_composite(white, rgba).convert("RGB"))
            pixels = processor(images=images, return_tensors="pt")["pixel_values"].to(dtype)
            output = model.get_image_features(pixel_values=pixels)
            feats = cpu_inference.features(output).float()
            vectors.append(torch.nn.functional.normalize(feats, dim=-1).numpy())
    np.save(out, np.concatenate(vectors))


def run_peer(model_dir: Path, files: list[Path], precision: str, args: argparse.Namespace, work: Path,
             env: dict[str, str]) -> tuple[float, np.ndarray]:
    """Seconds of the transformers loop as its own process, and its vectors."""
    listing, out = work / "files.txt", work / f"peer-{precision}.npy"
    listing.write_text("\n".join(map(str, files)))
    command = [sys.executable, str(Path(__file__).resolve()), "--peer-loop", str(model_dir), str(listing), precision,
               str(args.batch), str(out), str(args.threads)]
    return timed(command, env), np.load(out)


def make_audio_checkpoint(folder: Path, depth: int) -> Path:
    """A random-init B/16-shaped audio tower (10 s clips, 128 mels), saved for `omnibind index`."""
    torch.manual_seed(0)
    return omnibind.save(omnibind.create("B/16", ("audio",), audio={"depth": depth}), folder)


def decode_only(model_dir: Path, files: list[Path]) -> float:
    """Seconds to read, resample and turn every sound into the tower's input, one after another."""
    processor = omnibind.load(model_dir).processors[registry.AUDIO.name]
    start = time.perf_counter()
    for path in files:
        processor.one(str(path))
    return time.perf_counter() - start


def index_vectors(index: Path, files: list[Path]) -> np.ndarray:
    """The vectors an index stores for `files`, in their order (read straight from its SQLite file)."""
    import sqlite3

    with sqlite3.connect(index / "index.sqlite") as db:
        stored = {Path(p).name: np.frombuffer(v, dtype="<f4") for p, v in db.execute("SELECT path, vector FROM items")}
    return np.stack([stored[f.name] for f in files])


def cosine(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Min and mean row-wise cosine of two sets of unit vectors."""
    rows = (a * b).sum(-1)
    return {"min": float(rows.min()), "mean": float(rows.mean())}


# ----------------------------------------------------------------------------------------------- quality


def demo_checkpoint(choice: str) -> Path | None:
    """The trained demo model: a given folder, the newest checkpoint of runs/starter_cpu ('auto'), or None."""
    if choice == "none":
        return None
    if choice != "auto":
        return Path(choice)
    from omnibind.train.state import latest

    return latest(DEFAULT_DEMO_RUN / "checkpoints") if (DEFAULT_DEMO_RUN / "checkpoints").is_dir() else None


def demo_quality(model_dir: Path, data: Path, paths: list[str], limit: int) -> dict[str, dict[str, Any]]:
    """Per path: R@1 per retrieval direction and zero-shot top-1 on the starter test split ("metrics"), and the
    min and mean cosine of its unit embeddings of the split's inputs to fp32's, per modality ("cosine")."""
    from omnibind.evaluate.data import load_examples
    from omnibind.evaluate.run import evaluate_splits
    from omnibind.runtime import apply_runtime

    examples = load_examples(str(data / "test"), limit=limit)
    metrics, embeddings = {}, {}
    for path in dict.fromkeys(["fp32", *paths]):
        model = omnibind.load(model_dir)
        apply_runtime(model, path)
        found = evaluate_splits(model, {"test": examples})["test"]
        metrics[path] = {k: v for k, v in found.items() if k.endswith("/R@1") or k.endswith("zeroshot/top1")}
        embeddings[path] = example_embeddings(model, examples)
    reference = embeddings["fp32"]
    cosines = {path: {m: cosine(vectors[m], reference[m]) for m in vectors} for path, vectors in embeddings.items()}
    return {"metrics": metrics, "cosine": cosines}


def example_embeddings(model: omnibind.OmniBind, examples: list[Any]) -> dict[str, torch.Tensor]:
    """Unit embeddings of every example's input, per modality, on the model's path (what the metrics rank)."""
    from omnibind.evaluate.examples import embed_sources

    modalities = sorted({m for example in examples for m in example.inputs})
    with torch.inference_mode():
        return {m: embed_sources(model, m, [e.inputs[m] for e in examples if m in e.inputs]) for m in modalities}


# ----------------------------------------------------------------------------------------------- main


def run(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    """Extract the files, build the checkpoints, time every contender (unless --quality-only), measure quality."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    default = resolve("auto").name
    console.print(f"{cpu_inference.cpu_model()} · native bf16: {'yes' if bf16_supported() else 'no'} (auto = "
                  f"{default}) · {args.threads} threads · batch {args.batch} · depth {args.depth} · "
                  f"load {os.getloadavg()[0]:.1f}", soft_wrap=True)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="omnibind-index-speed-") as tmp:
        work = Path(tmp)
        env["OMNIBIND_CACHE"] = str(work / "cache")
        if not args.quality_only:
            rows = time_contenders(args, console, work, env)
        demo = demo_checkpoint(args.demo_model)
        quality = None
        if demo is not None:
            console.print(f"demo model: {demo}", soft_wrap=True)
            paths = sorted(set(args.paths) | set(args.embed_paths))
            with exported_into(env["OMNIBIND_CACHE"]):  # this process's ONNX exports, too, stay in the temp folder
                quality = demo_quality(demo, args.data, paths, args.eval_limit)
        else:
            console.print("demo model: none found (R@1 / zero-shot change skipped; pass --demo-model)")
    if rows:
        console.print(speed_table(rows))
    if quality:
        console.print(quality_table(quality["metrics"]))
        console.print(cosine_table(quality["cosine"]))
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "json"}
    return {"config": config, "default_runtime": default, "rows": rows, "demo_model": str(demo) if demo else None,
            "demo_quality": None if quality is None else quality["metrics"],
            "demo_cosine": None if quality is None else quality["cosine"]}


def time_contenders(args: argparse.Namespace, console: Console, work: Path,
                    env: dict[str, str]) -> list[dict[str, Any]]:
    """Every timed row: the transformers loops, `omnibind index` and `omnibind embed` per path, then sounds."""
    rows: list[dict[str, Any]] = []
    files = extract_media(args.data, args.split, args.pictures, args.sounds, work / "media")
    pictures = files[registry.IMAGE.name]
    console.print(f"{len(pictures)} pictures, {len(files[registry.AUDIO.name])} sounds from "
                  f"{args.data / args.split}", soft_wrap=True)
    model_dir = cpu_inference.make_checkpoint(work / "siglip", args.depth)
    threads = ["--threads", str(args.threads)]
    exports = warm_exports(model_dir, pictures[0], [*args.paths, *args.embed_paths], env, threads)
    vectors: dict[str, np.ndarray] = {}
    for precision in args.peer_precisions:
        seconds, vectors[f"transformers {precision}"] = run_peer(model_dir, pictures, precision, args, work, env)
        rows.append(row("pictures", f"transformers loop {precision}", "transformers", precision, seconds,
                        len(pictures)))
    for path in args.paths:
        index = work / f"index-{path}"
        seconds = timed(omnibind_command("index", work / "media" / "image", "-m", model_dir, "--index", index,
                                         "--runtime", path, "--batch-size", args.batch, "--device", "cpu",
                                         *threads), env)
        rows.append(row("pictures", f"omnibind index {path}", "omnibind", path, seconds, len(pictures),
                        exports.get(path)))
        vectors[f"index {path}"] = index_vectors(index, pictures)
    for path in dict.fromkeys(["fp32", *args.embed_paths]):
        out = work / f"embed-{path}.npy"
        seconds = timed(omnibind_command("embed", *pictures, "-m", model_dir, "-o", out, "--runtime", path,
                                         "--batch-size", args.batch, "--device", "cpu", *threads), env)
        vectors[f"omnibind {path}"] = np.load(out)
        rows.append(row("pictures", f"omnibind embed {path}", "omnibind", path, seconds, len(pictures),
                        exports.get(path)))
    finish_picture_rows(rows, vectors)
    sounds = files[registry.AUDIO.name]
    if sounds:
        rows += sound_rows(sounds, work, args, env, threads)
    return rows


@contextlib.contextmanager
def exported_into(cache: str) -> Iterator[None]:
    """OMNIBIND_CACHE set to `cache` in this process for the block (the user's own cache is left alone)."""
    previous = os.environ.get("OMNIBIND_CACHE")
    os.environ["OMNIBIND_CACHE"] = cache
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("OMNIBIND_CACHE")
        else:
            os.environ["OMNIBIND_CACHE"] = previous


def warm_exports(model_dir: Path, picture: Path, paths: list[str], env: dict[str, str],
                 threads: list[str]) -> dict[str, float]:
    """Seconds of each ONNX path's one-time export (one `omnibind embed` of one picture into a fresh cache)."""
    seconds = {}
    for path in dict.fromkeys(p for p in paths if p.startswith("onnx")):
        seconds[path] = timed(omnibind_command("embed", picture, "-m", model_dir, "-o", Path(env["OMNIBIND_CACHE"])
                                               / f"warm-{path}.npy", "--runtime", path, "--device", "cpu",
                                               *threads), env)
    return seconds


def row(kind: str, contender: str, library: str, path: str, seconds: float, files: int,
        setup: float | None = None) -> dict[str, Any]:
    return {"files": kind, "contender": contender, "library": library, "path": path, "seconds": seconds,
            "count": files, "files_per_s": files / seconds, "one_time_setup_seconds": setup}


def finish_picture_rows(rows: list[dict[str, Any]], vectors: dict[str, np.ndarray]) -> None:
    """Speed-ups over the transformers loop in fp32 and in the same precision, and cosines to omnibind fp32."""
    loops = {r["path"]: r for r in rows if r["library"] == "transformers"}
    reference = vectors.get("omnibind fp32")
    for r in rows:
        base = loops.get("fp32")
        same = loops.get("bf16" if r["path"].startswith("bf16") else "fp32")
        r["speedup_vs_loop_fp32"] = base["seconds"] / r["seconds"] if base else None
        r["speedup_vs_loop_same_precision"] = same["seconds"] / r["seconds"] if same else None
        key = f"index {r['path']}" if r["contender"].startswith("omnibind index") else f"{r['library']} {r['path']}"
        r["cosine_to_fp32"] = cosine(vectors[key], reference) if key in vectors and reference is not None else None


def sound_rows(sounds: list[Path], work: Path, args: argparse.Namespace, env: dict[str, str],
               threads: list[str]) -> list[dict[str, Any]]:
    """Decode-only seconds of the sounds, then `omnibind index` on them per path."""
    audio_dir = make_audio_checkpoint(work / "audio-model", args.depth)
    decode = decode_only(audio_dir, sounds)
    rows = [row("sounds", "decode only (read, resample, log-mel)", "omnibind", "-", decode, len(sounds))]
    for path in args.sound_paths:
        seconds = timed(omnibind_command("index", work / "media" / "audio", "-m", audio_dir, "--index",
                                         work / f"sound-index-{path}", "--runtime", path, "--batch-size", args.batch,
                                         "--device", "cpu", *threads), env)
        rows.append(row("sounds", f"omnibind index {path}", "omnibind", path, seconds, len(sounds)))
    for r in rows:
        r["decode_share"] = decode / r["seconds"]
    return rows


def speed_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="End to end on CPU (each contender its own process, wall clock)")
    for name in ("files", "contender", "seconds", "files/s", "vs loop fp32", "vs loop same dtype",
                 "cosine to fp32 (min / mean)", "one-time setup"):
        table.add_column(name, justify="left" if name in ("files", "contender") else "right")
    for r in rows:
        cos = r.get("cosine_to_fp32")
        setup = r.get("one_time_setup_seconds")
        table.add_row(f"{r['count']} {r['files']}", r["contender"], f"{r['seconds']:.1f}", f"{r['files_per_s']:.2f}",
                      _ratio(r, "speedup_vs_loop_fp32"), _ratio(r, "speedup_vs_loop_same_precision"),
                      "–" if cos is None else f"{cos['min']:.5f} / {cos['mean']:.5f}",
                      "–" if setup is None else f"{setup:.1f} s export")
    return table


def _ratio(r: dict[str, Any], key: str) -> str:
    return "–" if r.get(key) is None else f"{r[key]:.2f}×"


def quality_table(quality: dict[str, dict[str, float]]) -> Table:
    metrics = sorted({k for values in quality.values() for k in values})
    table = Table(title="Trained demo model on the starter test split: R@1 / zero-shot top-1 (Δ from fp32, points)")
    table.add_column("path")
    for metric in metrics:
        table.add_column(metric, justify="right")
    base = quality["fp32"]
    for path, values in quality.items():
        cells = [f"{100 * values[m]:.1f}" + ("" if path == "fp32" else f" ({100 * (values[m] - base[m]):+.1f})")
                 for m in metrics]
        table.add_row(path, *cells)
    return table


def cosine_table(cosines: dict[str, dict[str, dict[str, float]]]) -> Table:
    modalities = sorted({m for values in cosines.values() for m in values})
    table = Table(title="Trained demo model on the starter test split: cosine of each path's embeddings to fp32 "
                        "(min / mean)")
    table.add_column("path")
    for modality in modalities:
        table.add_column(modality, justify="right")
    for path, values in cosines.items():
        table.add_row(path, *(f"{values[m]['min']:.4f} / {values[m]['mean']:.5f}" if m in values else "–"
                              for m in modalities))
    return table


def main(argv: Sequence[str] | None = None, console: Console | None = None) -> dict[str, Any]:
    """Run the benchmark; prints the tables, writes JSON, and returns the results."""
    args = parse_args(argv)
    console = console or Console(width=None if sys.stdout.isatty() else 200)
    torch.set_num_threads(args.threads)
    results = run(args, console)
    results["load_1min_at_end"] = os.getloadavg()[0]
    console.print(f"written: {bench_results.save('index_speed', results, args.json)}")
    return results


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--peer-loop":
        model, listing, precision, batch, out, threads = sys.argv[2:8]
        torch.set_num_threads(int(threads))
        peer_loop(Path(model), Path(listing).read_text().splitlines(), precision, int(batch), Path(out))
    else:
        main(sys.argv[1:])
