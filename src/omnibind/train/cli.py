"""`omnibind train CONFIG [key=value ...] [--resume]`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from omnibind.cli_common import console, friendly_errors


@friendly_errors
def train_command(
    config: Annotated[Path, typer.Argument(help="YAML training config (see configs/).")],
    overrides: Annotated[list[str] | None, typer.Argument(help="key=value overrides, e.g. optim.lr=3e-4")] = None,
    resume: Annotated[bool, typer.Option(help="Continue from the newest checkpoint in the run folder.")] = False,
) -> None:
    """Train a model; run under torchrun for several processes or GPUs."""
    from omnibind.train.config import load_train_config
    from omnibind.train.trainer import train

    cfg = load_train_config(config, overrides or [])
    result = train(cfg, resume=resume, show_progress=sys.stderr.isatty())
    if result["metrics"]:
        console.print(f"step {result['step']}: loss {result['metrics']['loss']:.4f}; model in {result['checkpoint']}")


def register(app: typer.Typer) -> None:
    """Add `train` to the omnibind command."""
    app.command("train")(train_command)
