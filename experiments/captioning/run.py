"""The captioning study: train the picture captioner and the sound describer with several seeds, evaluate each
on the test and unseen splits beside the two baselines (the most frequent training caption; the nearest training
caption under the demo's contrastive model), and write results.json and results.md. Finished runs and
evaluations are skipped, so it can be stopped and continued.

    make demo                                   # runs/starter_cpu: the towers and the baseline model
    python experiments/captioning/run.py        # 3 seeds × (image, audio)
    python experiments/captioning/run.py --seeds 0 --tasks image
    python experiments/captioning/run.py --seeds 0 --runs demo_out/captioning --show 4   # `make caption`
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from omnibind.train.state import latest

HERE = Path(__file__).resolve().parent
BASELINE_MODEL = "runs/starter_cpu/checkpoints/step-00001400"
TRAIN = "data/starter/train"
SPLITS = {  # the splits each task is scored on: test, and the held-out rendering of its media
    "image": {"test": "data/starter/test", "test_unseen_style": "data/starter/test_unseen_style"},
    "audio": {"test": "data/starter/test", "test_unseen_soundfont": "data/starter/test_unseen_soundfont"},
}
SYSTEMS = ("generated", "nearest_caption", "most_frequent")
SCORES = ("CIDEr-D", "BLEU-4")


def omnibind(*args: str) -> None:
    """Run the omnibind CLI of this interpreter, failing loudly."""
    subprocess.run([sys.executable, "-m", "omnibind.cli", *args], check=True)


RUNS = HERE / "runs"


def run_dir(task: str, seed: int) -> Path:
    """Where seed `seed` of `task` trains and is evaluated."""
    return RUNS / f"{task}_seed{seed}"


def train_and_evaluate(task: str, seed: int) -> Path:
    """Train one seed (unless its final checkpoint exists) and evaluate it (unless its eval exists)."""
    out = run_dir(task, seed)
    config = HERE / f"{task}.yaml"
    if latest(out / "checkpoints") is None:
        omnibind("train", str(config), f"seed={seed}", f"run_dir={out}")
    checkpoint = latest(out / "checkpoints")
    assert checkpoint is not None, f"{out}: training wrote no checkpoint"
    evals = out / "eval"
    if not all((evals / f"{split}.json").is_file() for split in SPLITS[task]):
        data = [a for split, path in SPLITS[task].items() for a in ("--data", f"{split}={path}")]
        omnibind("eval", str(checkpoint), "--tasks", str(config), *data, "--train-data", TRAIN,
                 "--baseline-model", BASELINE_MODEL, "--out", str(out))  # writes out/eval/<split>.json
    return evals


def metrics_of(evals: Path, split: str) -> dict[str, float]:
    """The captioning metrics of one split's eval JSON."""
    data = json.loads((evals / f"{split}.json").read_text())
    return {k: v for k, v in data["metrics"].items() if k.startswith("captioning/")}


def summarise(task: str, seeds: list[int]) -> dict[str, Any]:
    """Per split: each system's scores per seed, their mean and min–max, and the item count."""
    result: dict[str, Any] = {}
    for split in SPLITS[task]:
        per_seed = {seed: metrics_of(run_dir(task, seed) / "eval", split) for seed in seeds}
        first = per_seed[seeds[0]]
        prefix = next(k.rsplit("/", 2)[0] for k in first if k.endswith("/CIDEr-D"))
        rows: dict[str, Any] = {"task": prefix.removeprefix("captioning/"),
                                "items": int(first[f"{prefix}/items"])}
        for system in SYSTEMS:
            for score in SCORES:
                values = [per_seed[s][f"{prefix}/{system}/{score}"] for s in seeds]
                rows[f"{system}/{score}"] = {"per_seed": dict(zip(map(str, seeds), values, strict=True)),
                                             "mean": statistics.fmean(values), "min": min(values),
                                             "max": max(values)}
        result[split] = rows
    return result


def table(results: dict[str, Any]) -> str:
    """results.md's table: CIDEr-D and BLEU-4 ×100, mean over seeds with min–max."""
    lines = ["| task | split | items | system | CIDEr-D | BLEU-4 |", "|---|---|---:|---|---:|---:|"]
    for task, splits in results["tasks"].items():
        for split, rows in splits.items():
            for system in SYSTEMS:
                cells = []
                for score in SCORES:
                    r = rows[f"{system}/{score}"]
                    spread = "" if r["min"] == r["max"] else f" ({100 * r['min']:.1f}–{100 * r['max']:.1f})"
                    cells.append(f"{100 * r['mean']:.1f}{spread}")
                lines.append(f"| {task} | {split} | {rows['items']} | {system} | {' | '.join(cells)} |")
    return "\n".join(lines)


def main() -> None:
    global RUNS
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--tasks", nargs="+", default=list(SPLITS), choices=list(SPLITS))
    parser.add_argument("--runs", type=Path, default=RUNS, help="where the runs go (the study's own: default)")
    parser.add_argument("--show", type=int, default=0, help="print this many test generations per task")
    args = parser.parse_args()
    RUNS = args.runs.resolve()
    for task in args.tasks:
        for seed in args.seeds:
            train_and_evaluate(task, seed)
    results = {"seeds": args.seeds, "baseline_model": BASELINE_MODEL,
               "tasks": {task: summarise(task, args.seeds) for task in args.tasks}}
    if RUNS == HERE / "runs":  # the study's own runs: its results files
        (HERE / "results.json").write_text(json.dumps(results, indent=2) + "\n")
        (HERE / "results.md").write_text(table(results) + "\n")
    print(table(results))
    for task in args.tasks:
        show(task, args.seeds[0], args.show)


def show(task: str, seed: int, count: int) -> None:
    """A few of the test split's generations beside the baselines' texts and the references."""
    shown = json.loads((run_dir(task, seed) / "eval" / "test.json").read_text()).get("captions", [])
    for item in shown[:count]:
        texts = item["texts"]
        print(f"\n{item['key']} ({item['prompt']!r})\n  generated:       {texts['generated']}\n"
              f"  nearest caption: {texts.get('nearest_caption', '-')}\n  references:      "
              f"{' | '.join(item['references'])}")


if __name__ == "__main__":
    main()
