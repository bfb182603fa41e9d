"""`make demo`, the main job: build the starter dataset (if absent), train a tokenizer on its training
captions, train configs/starter_cpu.yaml (a small image–text–audio model) from scratch on the CPU,
evaluate it on the test and "unseen" splits, write the report and print the results table.

    python scripts/demo.py [--config configs/starter_cpu.yaml] [key=value ...]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from rich.console import Console

from omnibind.evaluate.cli import results_table
from omnibind.evaluate.data import load_examples
from omnibind.evaluate.report import write_report
from omnibind.preprocess.text import Tokenizer, train_tokenizer
from omnibind.starter.build import StarterOptions, build_starter
from omnibind.train.config import load_train_config
from omnibind.train.trainer import train

CONFIG_DATA = "data/starter"  # where the config's shard paths point; --data moves them


def ensure_dataset(root: Path, limit: int | None, console: Console) -> None:
    """Build the starter dataset once (all of it, or `limit` items per kind and split); later runs reuse it."""
    if (root / "summary.json").is_file():  # written last, so an interrupted build is built again
        console.print(f"starter dataset: reusing {root}")
        return
    console.print(f"starter dataset: building into {root} (about 2 minutes for all of it)")
    build_starter(StarterOptions(out=root, seed=0, limit=limit), show_progress=sys.stderr.isatty())


def data_overrides(cfg_path: str, overrides: list[str], root: Path) -> list[str]:
    """Overrides that point the config's data and eval splits at `root` instead of data/starter."""
    if str(root) == CONFIG_DATA:
        return []
    cfg = load_train_config(cfg_path, overrides)
    moved = [f"data.shards={str(cfg.data.shards).replace(CONFIG_DATA, str(root))}"]
    for name, spec in cfg.eval.splits.items():
        moved.append(f"eval.splits.{name}={str(spec).replace(CONFIG_DATA, str(root))}")
    return moved


def ensure_tokenizer(run_dir: Path, train_spec: str, vocab_size: int, console: Console) -> Path:
    """A SentencePiece model trained on the training split's captions (never on test text)."""
    path = run_dir / "spiece.model"
    if not path.is_file():
        captions = [e.inputs["text"] for e in load_examples(train_spec) if "text" in e.inputs]
        train_tokenizer(captions, run_dir / "spiece", vocab_size)
        console.print(f"tokenizer: {Tokenizer(path).vocab_size} pieces from {len(captions)} training captions")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/starter_cpu.yaml")
    parser.add_argument("--data", type=Path, default=Path(CONFIG_DATA), help="starter dataset folder")
    parser.add_argument("--limit", type=int, default=None, help="build at most N items per kind and split")
    parser.add_argument("overrides", nargs="*", help="key=value overrides of the config")
    args = parser.parse_args()
    console = Console()
    start = time.perf_counter()
    ensure_dataset(args.data, args.limit, console)
    overrides = [*args.overrides, *data_overrides(args.config, args.overrides, args.data)]
    cfg = load_train_config(args.config, overrides)
    run_dir = Path(cfg.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    spiece = ensure_tokenizer(run_dir, str(cfg.data.shards), cfg.model.towers["text"]["vocab_size"], console)
    vocab = Tokenizer(spiece).vocab_size
    cfg = load_train_config(args.config, [*overrides, f"model.tokenizer={spiece}",
                                          f"model.towers.text.vocab_size={vocab}"])
    console.print(f"training {args.config} into {run_dir} ({cfg.train.steps} steps of {cfg.data.batch_size})")
    trained = time.perf_counter()
    result = train(cfg, show_progress=sys.stderr.isatty())
    trained = time.perf_counter() - trained
    md, _ = write_report(run_dir)
    results = {p.stem: json.loads(p.read_text())["metrics"] for p in sorted((run_dir / "eval").glob("*.json"))}
    console.print(results_table(results))
    console.print(f"model: {result['checkpoint']}  report: {md}  training: {trained / 60:.1f} min, "
                  f"whole demo: {(time.perf_counter() - start) / 60:.1f} min")


if __name__ == "__main__":
    main()
