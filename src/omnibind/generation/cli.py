"""`omnibind caption FILE... -m MODEL` and `omnibind ask IMAGE "question" -m MODEL`: text from a generator."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

import omnibind.modalities as registry
from omnibind.cli_common import DeviceOption, ModelOption, friendly_errors, load_model
from omnibind.errors import InputError

DEFAULT_PROMPT = "caption en"  # PaliGemma's captioning task prefix
BeamsOption = Annotated[int, typer.Option("--beams", min=1, help="Beam search width (1: greedy).")]
TokensOption = Annotated[int, typer.Option("--max-tokens", min=1, help="Most tokens to write per answer.")]
JsonOption = Annotated[bool, typer.Option("--json", help="One JSON object per line instead of text.")]


def generator(model: str, device: str) -> Any:
    """The checkpoint as a Generator, or an error naming it when it has no decoder."""
    from omnibind.generation import Generator

    loaded = load_model(model, device)
    if not isinstance(loaded, Generator):
        raise InputError(model, "has no text decoder", "a generator checkpoint, e.g. a transformers PaliGemma folder")
    return loaded


def media_of(model: Any, files: Sequence[Path]) -> list[tuple[str, Path]]:
    """(modality, file) for each file, by extension; refused when the generator has no tower for it."""
    import omnibind.modalities as registry

    out = []
    for path in files:
        modality = registry.modality_of(path)
        if modality is None or modality not in model.modalities:
            readable = ", ".join(model.modalities) or "none"
            raise InputError(path, f"not a file this generator reads ({modality or 'unknown type'})",
                             f"a file of: {readable}")
        if not path.is_file():
            raise InputError(path, "no such file", "an existing file")
        out.append((modality, path))
    return out


def caption(
    files: Annotated[list[Path], typer.Argument(help="Pictures or sounds to describe.")],
    model: ModelOption,
    prompt: Annotated[str, typer.Option("--prompt", "-p", help="The prompt each file is read with.")] = DEFAULT_PROMPT,
    beams: BeamsOption = 1,
    max_tokens: TokensOption = 32,
    batch_size: Annotated[int, typer.Option(min=1, help="Files generated for at once.")] = 8,
    as_json: JsonOption = False,
    device: DeviceOption = "auto",
) -> None:
    """Write a caption for each file (a picture or a sound), in the order given."""
    loaded = generator(model, device)
    items = media_of(loaded, files)
    for start in range(0, len(items), batch_size):
        chunk = items[start:start + batch_size]
        media: dict[str, list[Path | None]] = {m: [p if m == mod else None for mod, p in chunk]
                                               for m in {mod for mod, _ in chunk}}
        texts = loaded.generate([prompt] * len(chunk), beams=beams, max_new_tokens=max_tokens, **media)
        for (_, path), text in zip(chunk, texts, strict=True):
            if as_json:
                typer.echo(json.dumps({"file": str(path), "prompt": prompt, "caption": text}, ensure_ascii=False))
            else:
                typer.echo(f"{path}\t{text}")


def ask(
    image: Annotated[Path, typer.Argument(help="The picture the question is about.")],
    question: Annotated[str, typer.Argument(help="The question (the prompt).")],
    model: ModelOption,
    audio: Annotated[Path | None, typer.Option("--audio", help="A sound heard with the picture.")] = None,
    beams: BeamsOption = 1,
    max_tokens: TokensOption = 32,
    as_json: JsonOption = False,
    device: DeviceOption = "auto",
) -> None:
    """Answer a question about a picture (and a sound, when the generator has an audio tower)."""
    loaded = generator(model, device)
    picture, sound = registry.IMAGE.name, registry.AUDIO.name
    given = [(image, picture)] + ([(audio, sound)] if audio is not None else [])
    for (modality, path), (_, expected) in zip(media_of(loaded, [p for p, _ in given]), given, strict=True):
        if modality != expected:
            raise InputError(path, f"is read as {modality}", f"{'a picture' if expected == picture else 'a sound'}")
    media = {expected: path for path, expected in given}
    answer = loaded.generate(question, beams=beams, max_new_tokens=max_tokens, **media)[0]
    if as_json:
        typer.echo(json.dumps({picture: str(image), sound: str(audio) if audio else None,
                               "question": question, "answer": answer}, ensure_ascii=False))
    else:
        typer.echo(answer)


def register(app: typer.Typer) -> None:
    """Add `caption` and `ask` to the `omnibind` command."""
    app.command("caption")(friendly_errors(caption))
    app.command("ask")(friendly_errors(ask))
