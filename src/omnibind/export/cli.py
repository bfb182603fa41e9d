"""`omnibind export onnx MODEL OUT/`: the export command group."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from omnibind.cli_common import console, friendly_errors, load_model

export_app = typer.Typer(help="Export a model to other runtimes.", no_args_is_help=True)


@export_app.command("onnx")
@friendly_errors
def onnx(
    model: Annotated[str, typer.Argument(help="Checkpoint folder or hub id.")],
    out: Annotated[Path, typer.Argument(help="Folder for <tower>.onnx files and manifest.json.")],
    opset: Annotated[int, typer.Option(min=18, help="ONNX opset version.")] = 18,
    tolerance: Annotated[float, typer.Option(help="Largest accepted |onnxruntime − PyTorch| difference.")] = 1e-4,
) -> None:
    """Write one ONNX graph per tower (preprocessed tensor → unit embedding, dynamic batch), each checked
    against PyTorch with onnxruntime."""
    from omnibind.export.onnx import export_onnx

    exported = export_onnx(load_model(model, "cpu"), out, opset, tolerance, model_name=model)
    table = Table(title=f"{model} → {out}")
    for column in ("tower", "file", "input", "shape", "output", "max |Δ| vs PyTorch"):
        table.add_column(column)
    for tower in exported:
        shape = "×".join(str(s) for s in tower.input_shape)
        table.add_row(tower.modality, tower.file, f"{tower.input_name} ({tower.input_dtype})", shape,
                      f"{tower.output_name} (batch×{tower.embed_dim})", f"{tower.max_abs_diff:.2e}")
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add the export group to the `omnibind` command."""
    app.add_typer(export_app, name="export")
