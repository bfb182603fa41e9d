"""`omnibind data starter OUT/`: plan every item, pick a subset if asked, render, write shards per split,
then a summary (summary.json) and a composition report (README.md) beside them."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omnibind.data.pack import PackReport
from omnibind.data.seeding import derive_seed, rng_for
from omnibind.data.tario import ShardWriter
from omnibind.errors import InputError
from omnibind.progress import progress_bar
from omnibind.starter import emoji_art, instruments, speech
from omnibind.starter.items import SPLITS, Excluded, Item
from omnibind.starter.packages import ensure_packages, versions
from omnibind.starter.readme import write_readme
from omnibind.starter.stamps import plan_stamps


@dataclass
class StarterOptions:
    """Where to write, the seed, an optional cap on items per (kind, split) for quick builds, shard size."""

    out: Path
    seed: int = 0
    limit: int | None = None
    shard_size: int = 500
    install: bool = True


def plan(seed: int, synth: instruments.Synth) -> tuple[list[Item], dict[str, int]]:
    """Every item of the full dataset (nothing rendered yet) and the counts of what was left out."""
    stamp_items, _, excluded = plan_stamps(seed)
    emoji_items = emoji_art.plan_emoji(seed)
    by_concept: dict[str, list[Item]] = defaultdict(list)
    for item in emoji_items:
        if item.meta["style"] != emoji_art.HELD_OUT_STYLE:
            by_concept[item.meta["code_point"]].append(item)
    spoken_emoji = [rng_for(seed, "speech-style", code).choice(group) for code, group in sorted(by_concept.items())]
    spoken_stamps = [item for item in stamp_items if item.kind == "stamp"]
    items = [*stamp_items, *emoji_items, *instruments.plan_instruments(seed, synth),
             *speech.plan_speech(seed, spoken_stamps + spoken_emoji)]
    keys = Counter(item.key for item in items)
    duplicates = [key for key, count in keys.items() if count > 1]
    if duplicates:
        raise InputError("starter plan", f"duplicate keys {duplicates[:5]}", "one key per item")
    return items, excluded


def subset(items: list[Item], seed: int, limit: int | None) -> list[Item]:
    """At most `limit` items per (kind, split), chosen by a seeded hash so small builds still mix."""
    if limit is None:
        return items
    groups: dict[tuple[str, str], list[Item]] = defaultdict(list)
    for item in items:
        groups[(item.kind, item.split)].append(item)
    chosen = []
    for group in groups.values():
        chosen.extend(sorted(group, key=lambda i: derive_seed(seed, "limit", i.key))[:limit])
    return chosen


def build_starter(options: StarterOptions, show_progress: bool = True) -> dict[str, Any]:
    """Build the dataset into options.out; returns (and writes) the summary."""
    ensure_packages(options.install)
    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)
    synth = instruments.Synth()
    try:
        items, excluded = plan(options.seed, synth)
        items = subset(items, options.seed, options.limit)
        by_split: dict[str, list[Item]] = defaultdict(list)
        for item in items:
            by_split[item.split].append(item)
        reports: dict[str, tuple[PackReport, list[Item]]] = {}
        with progress_bar(not show_progress) as bar:
            task = bar.add_task("building the starter dataset", total=len(items), unit="items")
            for split in SPLITS:
                ordered = sorted(by_split.get(split, []), key=lambda i: derive_seed(options.seed, "order", i.key))
                reports[split] = _write_split(out / split, ordered, options.shard_size, excluded, bar, task)
    finally:
        synth.close()
    summary = _summary(options, reports, excluded)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    write_readme(out / "README.md", summary)
    return summary


def _write_split(folder: Path, items: list[Item], shard_size: int, excluded: dict[str, int], bar: Any,
                 task: Any) -> tuple[PackReport, list[Item]]:
    """Render and write one split's items (shuffled order, so every shard mixes kinds)."""
    for old in folder.glob("shard-*.tar"):
        old.unlink()
    written: list[Item] = []
    total = 0
    with ShardWriter(folder, "shard", shard_size) as writer:
        for item in items:
            bar.advance(task)
            try:
                fields = item.render()
            except Excluded as why:
                label = f"{item.kind}: {why.reason}"
                excluded[label] = excluded.get(label, 0) + 1
                continue
            writer.write(item.key, fields)
            item.meta["_bytes"] = {ext: len(data) for ext, data in fields.items()}
            total += sum(len(data) for data in fields.values())
            written.append(item)
    return PackReport(list(writer.paths), writer.count, total), written


def _summary(options: StarterOptions, reports: dict[str, tuple[PackReport, list[Item]]],
             excluded: dict[str, int]) -> dict[str, Any]:
    splits: dict[str, Any] = {}
    for split, (report, written) in reports.items():
        modalities: Counter = Counter()
        kinds: Counter = Counter()
        kind_bytes: Counter = Counter()
        licences: Counter = Counter()
        for item in written:
            sizes = item.meta.pop("_bytes")
            modalities.update(m for m in ("image", "audio") if getattr(item, m) is not None)
            modalities["text"] += 1
            kinds[item.kind] += 1
            kind_bytes[item.kind] += sum(sizes.values())
            licences.update({s["licence"] for s in item.sources.values()})
        pattern = report.pattern
        splits[split] = {
            "examples": report.examples, "bytes": report.bytes, "modalities": dict(modalities),
            "kinds": dict(sorted(kinds.items())), "kind_bytes": dict(sorted(kind_bytes.items())),
            "licences": dict(sorted(licences.items())),
            "shards": str(Path(pattern).relative_to(options.out)) if pattern else "",
            "shard_count": len(report.paths),
        }
    return {
        "seed": options.seed, "limit": options.limit, "shard_size": options.shard_size, "splits": splits,
        "held_out": {"emoji_style": emoji_art.HELD_OUT_STYLE, "sound_font": instruments.HELD_OUT_FONT,
                     "voices": {"accents": list(speech.HELD_OUT_ACCENTS), "variants": list(speech.HELD_OUT_VARIANTS)}},
        "training_factors": {"emoji_styles": [s for s in emoji_art.STYLES if s != emoji_art.HELD_OUT_STYLE],
                             "sound_fonts": [f.name for f in instruments.SOUND_FONTS
                                             if f.name != instruments.HELD_OUT_FONT],
                             "voices": {"accents": list(speech.TRAIN_ACCENTS),
                                        "variants": list(speech.TRAIN_VARIANTS)}},
        "excluded": dict(sorted(excluded.items())),
        "package_versions": versions(),
    }
