"""The README's results of `make demo` are the run kept in docs/results/demo/: every row of its table equals
that run's eval JSON (value and chance, formatted as the demo prints them), every split and headline metric
of the JSON is in the table, and the run facts quoted beside it equal its summary.json and config.yaml."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from omnibind.evaluate.report import _fmt, metric_rows
from omnibind.experiments.results import train_seconds

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "docs" / "results" / "demo"
HEADLINE = {"top1", "top5", "R@1", "median_rank"}  # the metrics the README shows of every task


def results_section() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("## Results of `make demo`")
    return text[start : text.index("\n## ", start + 1)]


def readme_rows() -> list[tuple[str, str, str, str, str]]:
    rows = []
    for line in results_section().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[0] not in ("split", "---"):
            rows.append(tuple(cells))
    return rows


def json_rows() -> list[tuple[str, str, str, str, str]]:
    rows = []
    for path in sorted((RUN / "eval").glob("*.json")):
        metrics = json.loads(path.read_text())["metrics"]
        for split, task, metric, value, chance in metric_rows(path.stem, metrics):
            if metric in HEADLINE:
                rows.append((split, task.replace("retrieval/", "retrieval "), metric, _fmt(value, metric),
                             _fmt(chance, metric)))
    return rows


def test_readme_table_equals_the_kept_run() -> None:
    table, kept = readme_rows(), json_rows()
    assert len(table) == len(set(table)) == 44
    assert sorted(table) == sorted(kept)


def test_readme_run_facts_equal_summary_and_config() -> None:
    summary = json.loads((RUN / "summary.json").read_text())
    config = yaml.safe_load((RUN / "config.yaml").read_text())
    section = " ".join(results_section().split())  # the prose wraps lines anywhere
    params = summary["parameters"]["trainable"]
    assert f"{params / 1e6:.1f} M parameters" in section
    assert f"{summary['steps']:,} steps" in section and f"({summary['examples_seen']:,} examples" in section
    assert f"batch {config['data']['batch_size']}" in section and f"seed {config['seed']}" in section
    records = [json.loads(line) for line in (RUN / "metrics.jsonl").read_text().splitlines()]
    losses = [r for r in records if "loss" in r]
    first, last = losses[0], losses[-1]
    assert f"from {first['loss']:.1f} (step {first['step']})" in section
    assert f"to {last['loss']:.1f} (step {last['step']:,})" in section
    rate = summary["final"]["pairs_per_s"]
    assert f"{train_seconds(summary) / 60:.1f} minutes of training at {rate:.0f} pairs/s" in section
    whole = re.search(r"whole demo: ([0-9.]+) min", (RUN / "demo.log").read_text())
    assert whole and f"{whole.group(1)} minutes in all" in section
    assert "docs/results/demo/" in section
