"""The command-line options every embedding command shares: `--runtime` and `--threads`."""

from __future__ import annotations

from typing import Annotated

import typer

from omnibind.runtime.spec import HELP

RuntimeOption = Annotated[str, typer.Option("--runtime", "-r", help=HELP)]
IndexRuntimeOption = Annotated[str | None, typer.Option(
    "--runtime", "-r", help=f"{HELP} Default: the path the index was built with (auto for a new index).")]
ThreadsOption = Annotated[int | None, typer.Option(
    "--threads", min=1, max=1024, help="Threads per PyTorch / ONNX Runtime op (default: every usable core).")]
