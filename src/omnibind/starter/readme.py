"""The README.md written beside a built starter dataset: what is in each split, held-out factors, licences."""

from __future__ import annotations

from pathlib import Path
from typing import Any

KIND_TEXT = {
    "stamp": "Tux Paint stamp: picture + English caption (+ its sound where the package has one)",
    "stamp narration": "Tux Paint stamp: picture + caption + a person reading the caption (NAME_desc.ogg)",
    "emoji": "emoji drawing + CLDR name",
    "instrument": "General MIDI instrument note (FluidSynth) + caption naming instrument and register",
    "drum": "General MIDI drum-kit sound (FluidSynth) + caption naming it",
    "speech": "eSpeak NG reading a stamp caption or emoji name + that picture and text",
}


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def write_readme(path: Path, summary: dict[str, Any]) -> None:
    """Write the composition report for one build."""
    held, train = summary["held_out"], summary["training_factors"]
    lines = [
        "# omnibind starter dataset",
        "",
        f"Built by `omnibind data starter` with seed {summary['seed']}"
        + (f", at most {summary['limit']} items per kind and split" if summary["limit"] else "") + ".",
        "Each split is a folder of WebDataset shards (`key.png|ogg|flac`, `key.txt`, `key.json`); the json of",
        "every example names the package, version, licence and file each of its modalities comes from.",
        "",
        "| split | examples | image | text | audio | size | shards |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for name, split in summary["splits"].items():
        mods = split["modalities"]
        lines.append(f"| {name} | {split['examples']} | {mods.get('image', 0)} | {mods.get('text', 0)} | "
                     f"{mods.get('audio', 0)} | {_mb(split['bytes'])} | `{split['shards']}` |")
    lines += ["", "## Kinds of example per split", "", "| split | " + " | ".join(KIND_TEXT) + " |",
              "| --- |" + " ---: |" * len(KIND_TEXT)]
    for name, split in summary["splits"].items():
        lines.append(f"| {name} | " + " | ".join(str(split["kinds"].get(k, 0)) for k in KIND_TEXT) + " |")
    lines += ["", *(f"- **{kind}**: {text}" for kind, text in KIND_TEXT.items()), "",
              "## Held out of training", "",
              f"- `test_unseen_style`: every emoji concept drawn in the **{held['emoji_style']}** style "
              f"(training uses {', '.join(train['emoji_styles'])}).",
              f"- `test_unseen_soundfont`: every instrument note and drum sound rendered from **{held['sound_font']}** "
              f"(training uses {', '.join(train['sound_fonts'])}).",
              f"- `test_unseen_voice`: every spoken caption read by accents {', '.join(held['voices']['accents'])} "
              f"with variants {', '.join(held['voices']['variants'])} (training: accents "
              f"{', '.join(train['voices']['accents'])}; variants {', '.join(train['voices']['variants'])}).",
              "- train / val / test share no caption group (stamp caption, emoji concept, instrument and register).",
              "  Unseen splits cover every concept; `concept_split` in each json says which split the concept",
              "  belongs to, so results can be restricted to test concepts.", "",
              "## Licences (examples per licence and split)", ""]
    for name, split in summary["splits"].items():
        lines.append(f"- {name}: " + ", ".join(f"{lic} {n}" for lic, n in split["licences"].items()))
    if summary["excluded"]:
        lines += ["", "## Left out", "", *(f"- {why}: {n}" for why, n in summary["excluded"].items())]
    lines += ["", "## Package versions", "", *(f"- {p}: {v}" for p, v in summary["package_versions"].items()), ""]
    path.write_text("\n".join(lines))
