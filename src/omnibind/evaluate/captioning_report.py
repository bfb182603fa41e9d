"""The report's captioning section: each kept example's picture or playable sound beside the generated text, the
baselines' texts and the references (read from the "captions" entries of eval/<split>.json)."""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from typing import Any

from omnibind.evaluate.captioning import FREQUENT, GENERATED, NEAREST

SYSTEMS = ((GENERATED, "generated"), (NEAREST, "nearest training caption"), (FREQUENT, "most frequent caption"))
SCALED = ("CIDEr-D", "BLEU-4")
"""Caption scores, shown ×100 as caption papers print them (CIDEr-D can pass 100)."""


def captions_markdown(splits: Sequence[dict[str, Any]], item: Callable[[dict[str, Any]], str]) -> list[str]:
    """Markdown lines of the section (none when no split has captions); `item` renders one saved medium."""
    rows = [(s["split"], c) for s in splits for c in s.get("captions", [])]
    if not rows:
        return []
    lines = ["", "## Generated text (beside the baselines and the references)", ""]
    for split, caption in rows:
        media = " ".join(item(m) for m in caption["media"])
        texts = "; ".join(f"{label}: “{caption['texts'][key]}”" for key, label in SYSTEMS if key in caption["texts"])
        refs = " | ".join(f"“{r}”" for r in caption["references"])
        lines.append(f"- **{split}** {caption['task']} (“{caption['prompt']}”): {media} — {texts} — references: {refs}")
    return lines


def captions_html(splits: Sequence[dict[str, Any]], item: Callable[[dict[str, Any]], str]) -> str:
    """The section as HTML (empty when no split has captions); `item` renders one saved medium (<img>, <audio>)."""
    esc = html.escape
    rows = []
    for split in splits:
        for caption in split.get("captions", []):
            media = "".join(f'<div class="cell">{item(m)}</div>' for m in caption["media"])
            texts = "".join(f"<div><b>{esc(label)}</b>: “{esc(caption['texts'][key])}”</div>"
                            for key, label in SYSTEMS if key in caption["texts"])
            refs = "".join(f"<li>{esc(r)}</li>" for r in caption["references"])
            rows.append(f'<div class="row">{media}<div class="caption"><div class="tag">{esc(split["split"])} · '
                        f'{esc(caption["task"])} · “{esc(caption["prompt"])}”</div>{texts}'
                        f"<div><b>references</b>:<ul>{refs}</ul></div></div></div>")
    if not rows:
        return ""
    return "<h2>Generated text (beside the baselines and the references)</h2>" + "".join(rows)
