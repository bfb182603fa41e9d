"""Pieces every `omnibind` subcommand shares: consoles, the error wrapper, device and model options."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Annotated, Any

import typer
from rich.console import Console

from omnibind.errors import OmniBindError

console = Console()
errors = Console(stderr=True)

ModelOption = Annotated[str, typer.Option("--model", "-m", help="Checkpoint folder or hub id.")]
DeviceOption = Annotated[str, typer.Option(help="'auto' (CUDA when present), 'cpu' or 'cuda[:N]'.")]


def friendly_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Show omnibind's input errors as one clear line and exit with status 2, without a traceback."""

    @wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except OmniBindError as err:
            errors.print(f"[red]error:[/red] {err}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from err

    return run


def resolve_device(name: str) -> str:
    """'auto' means CUDA when present, else CPU; anything else is passed to torch as is."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def load_model(model: str, device: str = "auto", kind: str = "auto") -> Any:
    """omnibind.load on the resolved device (imported lazily so `--help` stays fast); `kind` as in omnibind.load
    ("embedding": the OmniBind inside a captioning run's checkpoint)."""
    import omnibind

    return omnibind.load(model, device=resolve_device(device), kind=kind)
