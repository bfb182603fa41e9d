"""A study's results: one row per finished run (its columns, metrics, time and parameters), written as
results.md, results.csv and PNG plots beside the study file. Where a study repeats a configuration with
other seeds, results.md adds the mean and range over the seeds, computed from the unrounded values."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from omnibind.experiments.study import Study, config_value, is_done
from omnibind.plotting import pyplot, save
from omnibind.runlog import read_metrics

FIXED = ("steps", "examples", "trainable params", "train minutes")  # from each run's summary.json
SEED_KEY = "seed"  # the config key of the column that tells repeated runs apart


def train_seconds(summary: dict[str, Any]) -> float:
    """Seconds of the training steps alone (no checkpoint writing, no evaluation).

    summary.json has `train_seconds` since the trainer times them apart. Older summaries have only
    `seconds`, the whole loop; for them the time is taken from the last logged rate (pairs/s over this
    process's steps), which is logged before the final checkpoint and evaluation, so it leaves those out
    (but not any checkpoint or evaluation written in between)."""
    if "train_seconds" in summary:
        return float(summary["train_seconds"])
    rate = summary.get("final", {}).get("pairs_per_s")
    if not rate:
        return float(summary["seconds"])
    steps = summary.get("steps_this_process", summary["steps"])
    return steps * (summary["examples_seen"] / summary["steps"]) / rate


def collect(study: Study) -> list[dict[str, Any]]:
    """A row per finished run, in study order: name, columns, fixed facts and the chosen metrics."""
    rows = []
    for name, cfg in study.configs.items():
        if not is_done(cfg):
            continue
        run = Path(cfg.run_dir)
        summary = json.loads((run / "summary.json").read_text())
        evals = {p.stem: json.loads(p.read_text())["metrics"] for p in (run / "eval").glob("*.json")}
        row: dict[str, Any] = {label: config_value(cfg, key) for label, key in study.spec.columns.items()}
        row.update({"run": name, "note": study.entry(name).note, "steps": summary["steps"],
                    "examples": summary["examples_seen"], "trainable params": summary["parameters"]["trainable"],
                    "train minutes": train_seconds(summary) / 60})
        for label, key in study.spec.metrics.items():
            split, _, metric = key.partition("/")
            row[label] = evals.get(split, {}).get(metric)
        rows.append(row)
    return rows


def _fmt(value: Any, kind: str) -> str:
    """Rates (R@k, top-k) as percentages, other floats with 3 significant figures, counts with commas."""
    if value is None:
        return "–"
    if isinstance(value, float):
        if "R@" in kind or "/top" in kind:
            return f"{100 * value:.1f}%"
        return f"{value:.1f}" if kind == "train minutes" else f"{value:.3g}"
    if isinstance(value, int) and kind in ("trainable params", "examples"):
        return f"{value:,}"
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "–"
    return str(value)


def headers(study: Study) -> list[str]:
    """Table columns: run (and its note where any run has one), the study's columns, the fixed facts,
    then its metrics."""
    notes = ["note"] if any(e.note for e in study.spec.runs) else []
    return ["run", *notes, *study.spec.columns, *FIXED, *study.spec.metrics]


def markdown_table(study: Study, rows: list[dict[str, Any]]) -> str:
    """The results as a Markdown table, one row per finished run."""
    cols = headers(study)
    rule = "|".join("---" if c in ("run", "note") else "---:" for c in cols)
    lines = ["| " + " | ".join(cols) + " |", f"|{rule}|"]
    kinds = {c: study.spec.metrics.get(c, c) for c in cols}
    lines += ["| " + " | ".join(_fmt(row.get(c), kinds[c]) for c in cols) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def seed_groups(study: Study, rows: list[dict[str, Any]]) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Runs that differ only in the seed column, grouped (in study order) by their other columns; only groups
    of two or more runs. None where the study has no seed column."""
    seed = next((label for label, key in study.spec.columns.items() if key == SEED_KEY), None)
    if seed is None:
        return []
    keys = [label for label in study.spec.columns if label != seed]
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(repr(row.get(k)) for k in keys), []).append(row)
    return [({k: members[0].get(k) for k in keys}, members) for members in groups.values() if len(members) > 1]


def seed_table(study: Study, rows: list[dict[str, Any]]) -> str:
    """Mean over seeds and the range (min–max) of every metric, for configurations run with several seeds;
    the empty string where there are none. Means are of the unrounded values."""
    groups = seed_groups(study, rows)
    if not groups:
        return ""
    seed = next(label for label, key in study.spec.columns.items() if key == SEED_KEY)
    keys = [label for label in study.spec.columns if label != seed]
    cols = [*keys, "seeds", *study.spec.metrics]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---:" for _ in cols) + "|"]
    for values, members in groups:
        cells = [_fmt(values[k], k) for k in keys] + [", ".join(str(m.get(seed)) for m in members)]
        for label, kind in study.spec.metrics.items():
            found = [m[label] for m in members if m.get(label) is not None]
            if len(found) < len(members):
                cells.append("–")
                continue
            mean = sum(found) / len(found)
            cells.append(f"{_fmt(mean, kind)} ({_fmt(min(found), kind)}–{_fmt(max(found), kind)})")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_results(study: Study) -> dict[str, Path]:
    """results.md, results.csv and the plots; returns what was written by kind."""
    rows = collect(study)
    folder = study.folder
    written = {"md": folder / "results.md", "csv": folder / "results.csv"}
    text = f"# {study.spec.title}\n\n{markdown_table(study, rows)}"
    if seeds := seed_table(study, rows):
        text += f"\n## Mean over seeds (min–max), from the unrounded values\n\n{seeds}"
    written["md"].write_text(text)
    columns = headers(study)
    with written["csv"].open("w", newline="") as handle:
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        writer.writerows({c: row.get(c) for c in columns} for row in rows)
    if rows and study.spec.plot.metrics:
        written["plot"] = plot_metrics(study, rows, folder / "results.png")
    if rows and study.spec.plot.curves:
        written["curves"] = plot_curves(study, folder / "curves.png")
    return written


def plot_metrics(study: Study, rows: list[dict[str, Any]], out: Path) -> Path:
    """One panel per plotted metric: per series a line through the mean over runs at each x and a dot
    per run, or bars per run when there is no x."""
    plt = pyplot()
    plot = study.spec.plot
    fig, axes = plt.subplots(1, len(plot.metrics), figsize=(4.2 * len(plot.metrics), 3.4), squeeze=False)
    for ax, label in zip(axes[0], plot.metrics, strict=True):
        if plot.x is None:
            ax.bar([r["run"] for r in rows], [r[label] or 0 for r in rows], color="tab:blue")
            ax.tick_params(axis="x", rotation=45)
        else:
            for value in dict.fromkeys(r.get(plot.series) for r in rows):
                points = [(r[plot.x], r[label]) for r in rows if r.get(plot.series) == value and r[label] is not None]
                if not points:  # no run of this series wrote the metric
                    continue
                line = ax.plot(*zip(*_means(points), strict=True), label=str(value))[0]
                ax.scatter(*zip(*points, strict=True), color=line.get_color(), s=14)  # every run (seeds)
            ax.set_xlabel(plot.x)
            if plot.logx:
                ax.set_xscale("log", base=2)
            if ax.lines:
                ax.legend(title=plot.series)
        ax.set_title(label, fontsize=9)
        ax.grid(alpha=0.3)
    fig.suptitle(study.spec.title, fontsize=10)
    return save(fig, out, dpi=110)


def _means(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The mean y at each x, in x order (runs repeated with other seeds share an x)."""
    by_x: dict[float, list[float]] = {}
    for x, y in points:
        by_x.setdefault(x, []).append(y)
    return [(x, sum(ys) / len(ys)) for x, ys in sorted(by_x.items())]


def plot_curves(study: Study, out: Path) -> Path:
    """Training loss of every finished run over examples seen (log scale on both axes)."""
    fig, ax = pyplot().subplots(figsize=(6, 3.6))
    for name, cfg in study.configs.items():
        if not is_done(cfg):
            continue
        records = [r for r in read_metrics(Path(cfg.run_dir)) if "loss" in r]
        ax.plot([r["step"] * cfg.data.batch_size for r in records], [r["loss"] for r in records], label=name)
    ax.set_xlabel("examples seen")
    ax.set_ylabel("training loss")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.xaxis.set_minor_formatter("")  # the minor ticks' labels overlap on a log axis
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title(study.spec.title, fontsize=10)
    return save(fig, out, dpi=110)

