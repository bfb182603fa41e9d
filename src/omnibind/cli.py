"""The `omnibind` command. Thin: it parses arguments and calls the modules that do the work."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from omnibind.cli_common import DeviceOption, ModelOption, console, friendly_errors, load_model
from omnibind.runtime.options import RuntimeOption, ThreadsOption

app = typer.Typer(help="Images, text and audio in one embedding space.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
tokenizer_app = typer.Typer(help="SentencePiece tokenizers for text towers.", no_args_is_help=True)
app.add_typer(tokenizer_app, name="tokenizer")
@app.command()
@friendly_errors
def info(model: Annotated[str, typer.Argument(help="Checkpoint folder or hub id.")]) -> None:
    """Describe a model: its towers, sizes, parameters and preprocessing."""
    loaded = load_model(model, "cpu")
    towers = getattr(loaded.config, "encoders", loaded.config)  # a Generator's towers are its encoders
    table = Table(title=f"{model}  (embedding dim {towers.embed_dim})")
    for column in ("tower", "width", "depth", "heads", "mlp", "pool", "params", "input"):
        table.add_column(column)
    for name, tower in loaded.towers.items():
        cfg = towers.towers[name]
        params = sum(p.numel() for p in tower.parameters())
        table.add_row(name, str(cfg.width), str(cfg.depth), str(cfg.heads), str(cfg.mlp_dim), cfg.pool,
                      f"{params / 1e6:.1f}M", _input_description(name, cfg, loaded))
    console.print(table)
    if hasattr(loaded, "decoder"):
        from omnibind.generation.summary import describe

        console.print(describe(loaded))
        return
    scale, bias = loaded.logit_scale.exp().item(), loaded.logit_bias.item()
    console.print(f"logit scale exp(t') = {scale:.3f}, bias b = {bias:.3f}")


def _input_description(name: str, cfg: Any, model: Any) -> str:
    import omnibind.modalities as registry

    return registry.get(name).summary(cfg, model.processors.get(name))


@app.command()
@friendly_errors
def embed(
    files: Annotated[list[Path] | None, typer.Argument(help="Image and audio files.")] = None,
    model: ModelOption = ...,
    text: Annotated[list[str] | None, typer.Option("--text", "-t", help="A text to embed (repeatable).")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output .npy (N×D array) or .jsonl.")] = Path("emb.npy"),
    batch_size: Annotated[int, typer.Option(min=1)] = 32,
    device: DeviceOption = "auto",
    runtime: RuntimeOption = "auto",
    threads: ThreadsOption = None,
) -> None:
    """Embed files and texts into unit vectors; rows follow the input order (files, then texts)."""
    from omnibind.embed import check_output_path, embed_items, plan_items, write_embeddings
    from omnibind.runtime import apply_runtime, batch_threads, parse_runtime

    check_output_path(out)
    parse_runtime(runtime)  # a misspelt --runtime fails before the model loads
    items = plan_items(files or [], text or [])
    loaded = load_model(model, device, kind="embedding")  # a captioning run's towers too
    spec = apply_runtime(loaded, runtime, batch_threads(threads))
    vectors = embed_items(loaded, items, batch_size, show_progress=sys.stderr.isatty())
    write_embeddings(out, items, vectors)
    console.print(f"wrote {len(items)} embeddings of dim {vectors.shape[1]} to {out} ({spec.name})")


@app.command()
@friendly_errors
def classify(
    file: Annotated[Path, typer.Argument(help="An image or audio file.")],
    labels: Annotated[str, typer.Option(help="Comma-separated class names, e.g. 'cat,dog,car'.")],
    model: ModelOption = ...,
    template: Annotated[list[str] | None, typer.Option(help="Prompt template with '{}' (repeatable).")] = None,
    top: Annotated[int, typer.Option(min=1)] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    device: DeviceOption = "auto",
    runtime: RuntimeOption = "auto",
) -> None:
    """Zero-shot classification of one image or sound among the given labels."""
    from omnibind.embed import check_towers, plan_items
    from omnibind.inference import zero_shot
    from omnibind.runtime import apply_runtime, parse_runtime

    parse_runtime(runtime)  # a misspelt --runtime fails before the model loads
    items = plan_items([file], [])
    modality = items[0].modality
    names = [label.strip() for label in labels.split(",")]
    loaded = load_model(model, device, kind="embedding")  # a captioning run's towers too
    apply_runtime(loaded, runtime)
    check_towers(loaded, items)
    result = zero_shot(loaded, [str(file)], names, modality, template)
    ranked = result.top(top)[0]
    if as_json:
        console.print_json(json.dumps({"file": str(file), "modality": modality,
                                       "results": [{"label": n, "prob": p} for n, p in ranked]}))
        return
    table = Table(title=f"{file} ({modality})")
    table.add_column("label")
    table.add_column("probability", justify="right")
    for name, prob in ranked:
        table.add_row(name, f"{prob:.4g}")
    console.print(table)


@app.command()
@friendly_errors
def create(
    variant: Annotated[str, typer.Argument(help="Named size, e.g. 'Ti/16', 'B/16', 'So400m/14'.")],
    out: Annotated[Path, typer.Argument(help="Folder to write the new checkpoint to.")],
    modalities: Annotated[str, typer.Option(help="Comma-separated towers.")] = "image,text,audio",
    tokenizer: Annotated[Path | None, typer.Option(help="SentencePiece .model for the text tower.")] = None,
    embed_dim: Annotated[int | None, typer.Option(help="Shared embedding size (default: the width).")] = None,
    seed: int = 0,
) -> None:
    """Write a freshly initialised model (for training from scratch)."""
    import torch

    import omnibind

    torch.manual_seed(seed)
    names = tuple(m.strip() for m in modalities.split(",") if m.strip())
    text_overrides = {}
    if tokenizer is not None:
        from omnibind.preprocess.text import Tokenizer

        text_overrides = {"vocab_size": Tokenizer(tokenizer).vocab_size}
    model = omnibind.create(variant, names, tokenizer, embed_dim, text=text_overrides)
    omnibind.save(model, out)
    console.print(f"created {variant} model with towers {', '.join(names)} in {out}")


@tokenizer_app.command("train")
@friendly_errors
def tokenizer_train(
    corpus: Annotated[Path, typer.Argument(help="Text file, one text per line.")],
    out: Annotated[Path, typer.Argument(help="Output prefix; writes PREFIX.model.")],
    vocab_size: Annotated[int, typer.Option(min=8)] = 32000,
) -> None:
    """Train a SigLIP-style SentencePiece tokenizer for a model trained from scratch."""
    from omnibind.errors import InputError
    from omnibind.preprocess.text import train_tokenizer

    if not corpus.is_file():
        raise InputError(corpus, "file not found", "a text file with one text per line")
    with corpus.open(encoding="utf-8", errors="replace") as lines:
        path = train_tokenizer(lines, out, vocab_size)
    console.print(f"wrote {path}")


# Command groups that live beside the code they drive; each module has register(app: typer.Typer).
SUBCOMMAND_MODULES: tuple[str, ...] = (
    "omnibind.train.cli",
    "omnibind.evaluate.cli",
    "omnibind.data.cli",
    "omnibind.search.cli",
    "omnibind.export.cli",
    "omnibind.experiments.cli",
    "omnibind.scale.cli",
    "omnibind.generation.cli",
    "omnibind.compose.cli",
)
for _name in SUBCOMMAND_MODULES:
    importlib.import_module(_name).register(app)

if __name__ == "__main__":
    app()
