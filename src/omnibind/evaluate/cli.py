"""`omnibind eval MODEL --data NAME=SPEC ...` and `omnibind report RUN_DIR`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from omnibind.cli_common import DeviceOption, console, friendly_errors, load_model
from omnibind.errors import InputError


def parse_splits(items: list[str]) -> dict[str, str]:
    """NAME=SPEC pairs (a bare SPEC is named after its file) into an ordered mapping."""
    splits = {}
    for item in items:
        name, sep, spec = item.partition("=")
        if not sep:
            name, spec = Path(item).stem.split(".")[0], item
        if not name or not spec:
            raise InputError(item, "bad --data value", "NAME=SHARDS, e.g. test=data/test/shard-{000..003}.tar")
        splits[name] = spec
    return splits


def results_table(results: dict[str, dict[str, float]]) -> Table:
    """The headline metrics of every split beside their chance levels."""
    from omnibind.evaluate.report import _fmt, metric_rows

    table = Table(title="evaluation (chance beside each figure)")
    for column in ("split", "task", "metric", "value", "chance"):
        table.add_column(column, justify="left" if column in ("split", "task", "metric") else "right")
    for split, task, metric, value, chance in (r for s, m in results.items() for r in metric_rows(s, m)):
        table.add_row(split, task, metric, _fmt(value, metric), _fmt(chance, metric))
    return table


@friendly_errors
def eval_command(
    model: Annotated[str, typer.Argument(help="Checkpoint folder or hub id.")],
    data: Annotated[list[str], typer.Option("--data", "-d", help="NAME=SHARDS (repeatable).")],
    out: Annotated[Path | None, typer.Option(help="Folder for eval/<split>.json and media (for reports).")] = None,
    label_field: Annotated[str, typer.Option(help="Field of each example's JSON naming its class.")] = "label",
    limit: Annotated[int | None, typer.Option(help="At most this many examples per split.")] = None,
    template: Annotated[list[str] | None, typer.Option(help="Zero-shot prompt with '{}' (repeatable).")] = None,
    prompt: Annotated[str, typer.Option(help="Generators: the prompt every medium is read with.")] = "caption en",
    tasks: Annotated[Path | None, typer.Option(help="Generators: a captioning training config whose "
                                                    "loss.options.tasks give prompts per example.")] = None,
    beams: Annotated[int, typer.Option(min=1, help="Generators: beam width (1: greedy).")] = 1,
    max_tokens: Annotated[int, typer.Option("--max-tokens", min=1, help="Generators: most tokens written.")] = 32,
    train_data: Annotated[str | None, typer.Option(help="Generators: training SHARDS, whose captions the "
                                                        "baselines pick from.")] = None,
    baseline_model: Annotated[str | None, typer.Option(help="Generators: a contrastive checkpoint for the "
                                                            "nearest-training-caption baseline.")] = None,
    device: DeviceOption = "auto",
) -> None:
    """Zero-shot classification (every media modality) and retrieval (every pair present) on each split; for a
    generator, captioning (CIDEr-D, BLEU-4, exact match for questions) beside two baselines."""
    import omnibind.modalities as registry
    from omnibind.evaluate.captioning import CaptionSettings, caption_settings, tasks_from_config
    from omnibind.evaluate.data import load_examples
    from omnibind.evaluate.run import evaluate_splits
    from omnibind.generation import Generator

    if baseline_model is not None and train_data is None:
        raise InputError("--baseline-model", "given without --train-data", "--train-data SHARDS to pick captions from")
    loaded = load_model(model, device)
    if not isinstance(loaded, Generator) and (tasks or train_data or baseline_model):
        raise InputError(model, "is not a generator, so --tasks, --train-data and --baseline-model do not apply",
                         "a generator checkpoint (one with a decoder)")
    splits = {name: load_examples(spec, label_field, limit) for name, spec in parse_splits(data).items()}
    templates = dict.fromkeys(registry.media_names(), template) if template else None
    # the embedding model of the checkpoint: a contrastive one's, or that of a captioning run trained beside a
    # contrastive loss (its towers, t' and b), as that run's own evaluation uses while it trains
    baseline = load_model(baseline_model, device, kind="embedding") if baseline_model else None
    settings = CaptionSettings(tasks_from_config(tasks) if tasks else None, prompt, beams, max_tokens,
                               train=load_examples(train_data, label_field) if train_data else (),
                               baseline_model=baseline)
    with caption_settings(settings):
        results = evaluate_splits(loaded, splits, out, templates)
    console.print(results_table(results))


@friendly_errors
def report_command(run_dir: Annotated[Path, typer.Argument(help="A run folder (train and/or eval output).")]) -> None:
    """Write report.md and report.html (metrics, curves, retrieval examples) into the run folder."""
    from omnibind.evaluate.report import write_report

    md, page = write_report(run_dir)
    console.print(f"wrote {md} and {page}")


def register(app: typer.Typer) -> None:
    """Add `eval` and `report` to the omnibind command."""
    app.command("eval")(eval_command)
    app.command("report")(report_command)
