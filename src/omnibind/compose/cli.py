"""`omnibind compose OUT --from image,text=CKPT_A --from audio,text=CKPT_B`: one model in CKPT_A's space."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from omnibind.cli_common import friendly_errors


def compose(
    out: Annotated[Path, typer.Argument(help="Folder to write the composed checkpoint to.")],
    sources: Annotated[list[str] | None, typer.Option(
        "--from", help="MODALITIES=CHECKPOINT (a folder or hub id); the first is the base space, e.g. "
                       "image,text=google/siglip2-base-patch16-224, then audio,text=laion/clap-htsat-unfused.")] = None,
    connector: Annotated[str, typer.Option(help="Connector into the base space: linear or mlp.")] = "linear",
    hidden: Annotated[int | None, typer.Option(help="The mlp connector's hidden width (default: the larger "
                                                    "of the two spaces' sizes).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the connectors' initialisation.")] = 0,
) -> None:
    """Compose one model whose base space is the first --from's; every other tower gets a connector to train
    with `omnibind train` (loss.kind text_bridge, sigmoid or text_bridge_sigmoid; see docs/pretrained.md)."""
    from omnibind.compose import compose as build
    from omnibind.compose import save_composed

    model = build(sources or [], connector=connector, hidden=hidden, seed=seed)
    save_composed(model, out)
    towers = ", ".join(f"{m} ({getattr(model.config.towers[m], 'kind', 'base')})" for m in model.modalities)
    trainable = sum(p.numel() for n, p in model.named_parameters() if ".connector." in n)
    typer.echo(f"wrote {out}: towers {towers}; {trainable:,} connector parameters to train")


def register(app: typer.Typer) -> None:
    """Add `compose` to the `omnibind` command."""
    app.command("compose")(friendly_errors(compose))
