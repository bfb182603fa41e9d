"""`omnibind study run STUDY` and `omnibind study table STUDY`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from omnibind.cli_common import console, friendly_errors

study_app = typer.Typer(help="Studies: sets of training runs tabulated and plotted together.", no_args_is_help=True)
StudyArg = Annotated[Path, typer.Argument(help="A study file (experiments/*/study.yaml).")]


@study_app.command("run")
@friendly_errors
def run_command(
    study: StudyArg,
    only: Annotated[list[str] | None, typer.Option(help="Train only this run (repeatable).")] = None,
    force: Annotated[bool, typer.Option(help="Train runs again even where results exist.")] = False,
) -> None:
    """Train the study's unfinished runs in order, then write its table and plots."""
    from omnibind.experiments.study import load_study, run_study

    loaded = load_study(study)
    trained = run_study(loaded, only, force)
    console.print(f"trained {len(trained)} run(s): {', '.join(trained) or 'none (all had results)'}")
    table_command(study)


@study_app.command("table")
@friendly_errors
def table_command(study: StudyArg) -> None:
    """Write results.md, results.csv and the plots from the finished runs, and print the table."""
    from omnibind.experiments.results import write_results
    from omnibind.experiments.study import load_study

    written = write_results(load_study(study))
    console.print(written["md"].read_text(), markup=False, highlight=False)
    console.print("written: " + ", ".join(str(p) for p in written.values()))


def register(app: typer.Typer) -> None:
    """Add `study` to the omnibind command."""
    app.add_typer(study_app, name="study")
