"""`omnibind report RUN_DIR`: report.md and report.html with the metrics table (beside chance), the
training curves and a grid of retrieval examples (pictures shown, sounds playable in the HTML: each saved
example is shown by its file's media type, whatever modality wrote it)."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from omnibind.errors import InputError
from omnibind.evaluate.captioning_report import SCALED, captions_html, captions_markdown
from omnibind.plotting import pyplot, save
from omnibind.runlog import read_metrics

CURVES = {
    "loss": ("loss", lambda k: k == "loss" or k.startswith("loss/")),
    "learning_rate": ("learning rate", lambda k: k == "lr"),
    "temperature_bias": ("t = exp(t') and b", lambda k: k in ("t", "b")),
    "throughput": ("pairs/s", lambda k: k == "pairs_per_s"),
}


def plot_curves(records: list[dict[str, Any]], folder: Path) -> list[Path]:
    """One PNG per curve group, from metrics.jsonl records."""
    plt = pyplot()
    folder.mkdir(parents=True, exist_ok=True)
    steps = [r["step"] for r in records]
    paths = []
    for name, (title, wanted) in CURVES.items():
        keys = sorted({k for r in records for k in r if wanted(k)})
        if not keys:
            continue
        fig, ax = plt.subplots(figsize=(6, 3.2), dpi=100)
        for key in keys:
            ax.plot(steps, [r.get(key, float("nan")) for r in records], label=key)
        ax.set_xlabel("step")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        if len(keys) > 1:
            ax.legend(fontsize=7)
        paths.append(save(fig, folder / f"{name}.png"))
    return paths


def metric_rows(split: str, metrics: dict[str, float]) -> list[tuple[str, str, str, float, float | None]]:
    """(split, task, metric, value, chance) for every metric that has a chance level or is a rank."""
    rows = []
    for key, value in sorted(metrics.items()):
        task, _, metric = key.rpartition("/")
        if metric.endswith("_chance") or metric in ("classes", "examples", "queries", "items"):
            continue
        chance = metrics.get(f"{task}/{metric}_chance")
        if chance is None and metric == "top5":
            chance = metrics.get(f"{task}/top5_chance")
        rows.append((split, task, metric, value, chance))
    return rows


def _fmt(value: float | None, metric: str) -> str:
    if value is None:
        return "–"
    if metric in SCALED:
        return f"{100 * value:.1f}"
    return f"{value:.1f}" if metric == "median_rank" else f"{100 * value:.1f}%"


def write_report(run_dir: str | Path) -> tuple[Path, Path]:
    """Write RUN/report.md and RUN/report.html (plots under RUN/report/); returns both paths."""
    run = Path(run_dir)
    if not run.is_dir():
        raise InputError(run, "run folder not found", "a folder written by `omnibind train`")
    records = read_metrics(run) if (run / "metrics.jsonl").is_file() else []
    plots = plot_curves(records, run / "report") if records else []
    splits = [json.loads(p.read_text()) for p in sorted((run / "eval").glob("*.json"))]
    if not records and not splits:
        raise InputError(run, "holds neither metrics.jsonl nor eval/*.json", "a trained or evaluated run")
    rows = [row for s in splits for row in metric_rows(s["split"], s["metrics"])]
    md, page = run / "report.md", run / "report.html"
    md.write_text(_markdown(run, rows, plots, splits))
    page.write_text(_html(run, rows, plots, splits))
    return md, page


def _markdown(run: Path, rows: list, plots: list[Path], splits: list[dict]) -> str:
    lines = [f"# omnibind run report: {run.name}", "", "## Metrics (chance beside each figure)", "",
             "| split | task | metric | value | chance |", "|---|---|---|---|---|"]
    lines += [f"| {s} | {t} | {m} | {_fmt(v, m)} | {_fmt(c, m)} |" for s, t, m, v, c in rows]
    lines += ["", "## Training curves", ""] + [f"![{p.stem}]({p.relative_to(run)})" for p in plots]
    lines += ["", "## Retrieval examples (query → top 5)", ""]
    for split in splits:
        for example in split["examples"]:
            query = _md_item(example["query"], "eval/")
            hit = example["query"]["key"]
            results = " · ".join(f"{_md_item(r, 'eval/')} ({r['score']:.2f}){' ✓' if r['key'] == hit else ''}"
                                 for r in example["results"])
            lines.append(f"- **{split['split']}** {example['direction']}: {query} → {results}")
    lines += captions_markdown(splits, lambda item: _md_item(item, "eval/"))
    return "\n".join(lines) + "\n"


def _media_kind(item: dict) -> str:
    """"image", "audio" or another top-level media type of a saved example (eval files written before
    media types were recorded: image for the image modality, else audio)."""
    media_type = item.get("media_type") or ("image/png" if item["modality"] == "image" else "audio/wav")
    return media_type.split("/", 1)[0]


def _md_item(item: dict, prefix: str) -> str:
    if "text" in item:
        return f"“{item['text']}”"
    if _media_kind(item) == "image":
        return f"![{item['key']}]({prefix}{item['media']})"
    return f"[{item['key']} ({item['modality']})]({prefix}{item['media']})"


def _html(run: Path, rows: list, plots: list[Path], splits: list[dict]) -> str:
    esc = html.escape
    table = "".join(f"<tr><td>{esc(s)}</td><td>{esc(t)}</td><td>{esc(m)}</td><td>{_fmt(v, m)}</td>"
                    f"<td>{_fmt(c, m)}</td></tr>" for s, t, m, v, c in rows)
    images = "".join(f'<img src="{esc(str(p.relative_to(run)))}" alt="{esc(p.stem)}">' for p in plots)
    grid = []
    for split in splits:
        for example in split["examples"]:
            query = example["query"]
            cells = "".join(
                f'<div class="cell{" hit" if r["key"] == query["key"] else ""}">{_html_item(r)}'
                f'<div class="score">{r["score"]:.3f}</div></div>' for r in example["results"])
            grid.append(f'<div class="row"><div class="cell query"><div class="tag">{esc(split["split"])} · '
                        f'{esc(example["direction"])}</div>{_html_item(query)}</div>{cells}</div>')
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>omnibind report: {esc(run.name)}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1100px}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}td:nth-child(-n+3){{text-align:left}}
img{{max-width:100%}}.row{{display:flex;gap:8px;margin:8px 0;align-items:flex-start}}
.cell{{width:150px;border:1px solid #ddd;padding:4px;font-size:12px}}.query{{background:#eef}}
.hit{{border:2px solid #2a2}}.score{{color:#555}}.cell img{{width:140px}}audio{{width:140px}}
.caption{{font-size:13px}}</style></head>
<body><h1>omnibind run report: {esc(run.name)}</h1><h2>Metrics (chance beside each figure)</h2>
<table><tr><th>split</th><th>task</th><th>metric</th><th>value</th><th>chance</th></tr>{table}</table>
<h2>Training curves</h2>{images}<h2>Retrieval examples (query → top 5; green = the true match)</h2>
{"".join(grid)}{captions_html(splits, _html_item)}</body></html>
"""


def _html_item(item: dict) -> str:
    esc = html.escape
    label = f"<div>{esc(item['label'])}</div>" if item.get("label") else ""
    if "text" in item:
        return f"<div>“{esc(item['text'])}”</div>"
    kind, src = _media_kind(item), esc(f"eval/{item['media']}")
    if kind == "image":
        return f'<img src="{src}" alt="{esc(item["key"])}">{label}'
    if kind == "audio":
        return f'<audio controls src="{src}"></audio>{label}'
    return f'<a href="{src}">{esc(item["key"])} ({esc(item["modality"])})</a>{label}'
