"""The hostile corpus (hostile_corpus.py) in a media folder: `omnibind index` completes on every run, names
each bad file once with its reason, counts each outcome separately and retries a failed file only once it
changes; `embed` and `search` given a bad file end with one line and status 2; an hour-long WAV and a
1 × 40M-pixel PNG cost the indexer almost no memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hostile_corpus import Kind, strip_png, write_corpus, write_hour_wav
from search_media import png_bytes, write_media
from typer.testing import CliRunner

from omnibind.cli import app
from omnibind.search.scan import printable
from omnibind.search.store import Store

runner = CliRunner()
MEMORY_MARGIN_MB = 200


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def shown(folder: Path, kind: Kind) -> str:
    """How the report names a corpus file."""
    name = kind.name if isinstance(kind.name, bytes) else kind.name.encode()
    return printable(os.fsdecode(os.fsencode(folder) + b"/" + name))


def lines_naming(output: str, folder: Path, kind: Kind) -> list[str]:
    return [line for line in output.splitlines() if f"{shown(folder, kind)}:" in line]


@pytest.fixture
def corpus(tmp_path: Path) -> tuple[Path, dict[str | bytes, Kind]]:
    media = tmp_path / "media"
    kinds = write_corpus(media, tmp_path / "outside")
    return media, kinds


def test_the_corpus_has_at_least_forty_kinds(corpus) -> None:
    _, kinds = corpus
    assert len(kinds) >= 40
    assert {k.outcome for k in kinds.values()} == {"indexed", "failed", "skipped", "ignored"}


def test_index_completes_names_each_bad_file_once_and_retries_only_changed_ones(
        corpus, tmp_path: Path, search_checkpoint: Path) -> None:
    media, kinds = corpus
    by = {outcome: [k for k in kinds.values() if k.outcome == outcome] for outcome in ("indexed", "failed", "skipped")}
    index = tmp_path / "index"
    first = invoke("index", media, "-m", search_checkpoint, "--index", index, "--device", "cpu")
    assert first.exit_code == 0, first.output
    assert "Traceback" not in first.output and "<bytes>" not in first.output and "object at 0x" not in first.output
    assert (f"{len(by['indexed'])} new, 0 changed, 0 re-stamped, 0 unchanged, 0 removed, {len(by['failed'])} failed, "
            f"0 failed earlier (unchanged, not retried), {len(by['skipped'])} skipped") in first.output
    for kind in kinds.values():
        named = lines_naming(first.output, media, kind)
        if kind.outcome in ("failed", "skipped"):
            assert len(named) == 1, (kind, named)
            assert named[0].startswith(f"{kind.outcome}: ") and kind.reason in named[0], (kind, named)
        else:
            assert named == [], (kind, named)
    store = Store(index)
    try:
        indexed = {os.path.relpath(p, media) for p in store.known_files(str(media.resolve()))}
    finally:
        store.close()
    assert indexed == {k.name for k in by["indexed"]}

    second = invoke("index", media, "-m", search_checkpoint, "--index", index)
    assert second.exit_code == 0, second.output
    assert (f"0 new, 0 changed, 0 re-stamped, {len(by['indexed'])} unchanged, 0 removed, 0 failed, "
            f"{len(by['failed'])} failed earlier (unchanged, not retried), {len(by['skipped'])} skipped"
            ) in second.output
    for kind in by["failed"]:
        assert [line.split(":")[0] for line in lines_naming(second.output, media, kind)] == ["failed earlier"]

    (media / "bomb_area.png").write_bytes(png_bytes(20))  # fixed: retried and indexed
    (media / "loud.wav").write_bytes(b"still not a sound")  # changed: retried, fails again
    third = invoke("index", media, "-m", search_checkpoint, "--index", index)
    assert third.exit_code == 0, third.output
    assert f"1 new, 0 changed, 0 re-stamped, {len(by['indexed'])} unchanged, 0 removed, 1 failed, " \
           f"{len(by['failed']) - 2} failed earlier" in third.output


BAD_QUERIES = [("--image", "bomb_area.png", "too large"), ("--image", "bomb_aspect.png", "1×39999999"),
               ("--image", "truncated.png", "cannot decode image"), ("--image", "svg_as.png", "not a recognised"),
               ("--audio", "loud.wav", "sample values reach 1e+30"), ("--audio", "nan.wav", "NaN"),
               ("--audio", "zero_samples.wav", "zero samples"), ("--audio", "fifo.wav", "not a regular file"),
               ("--image", "dangling.png", "file not found")]


@pytest.mark.parametrize(("flag", "name", "words"), BAD_QUERIES, ids=[q[1] for q in BAD_QUERIES])
def test_embed_and_search_end_with_one_line_and_status_2(corpus, built_index, flag: str, name: str,
                                                         words: str, tmp_path: Path) -> None:
    media, _ = corpus
    for result in (invoke("search", built_index.index, flag, media / name, "--device", "cpu"),
                   invoke("embed", media / name, "-m", built_index.model, "-o", tmp_path / "out.npy")):
        lines = result.output.strip().splitlines()
        assert result.exit_code == 2, result.output
        assert len(lines) == 1 and lines[0].startswith("error: ") and name in lines[0] and words in lines[0], lines


def test_a_sound_for_a_model_without_an_audio_tower_names_the_file(tmp_path: Path,
                                                                   image_text_checkpoint: Path) -> None:
    sound = write_media(tmp_path / "media", images=0, sounds=1)[0]
    for result in (invoke("embed", sound, "-m", image_text_checkpoint, "-o", tmp_path / "out.npy"),
                   invoke("classify", sound, "--labels", "a,b", "-m", image_text_checkpoint)):
        assert result.exit_code == 2 and f"{sound}: this model has no audio tower" in " ".join(result.output.split())


PEAK_SCRIPT = """
import json, resource, sys
import omnibind
from omnibind.search import update_index
media, index, model = sys.argv[1:]
report = update_index(index, media, omnibind.load(model), model)
print(json.dumps({"peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "added": report.added,
                  "failed": len(report.failed)}))
"""


def indexer_peak(media: Path, index: Path, model: Path) -> dict:
    """Peak resident memory (KB) of a fresh process that indexes `media`."""
    done = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, str(media), str(index), str(model)], check=True,
                          capture_output=True, text=True, timeout=300)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_an_hour_of_sound_and_a_forty_megapixel_strip_cost_the_indexer_little_memory(
        tmp_path: Path, search_checkpoint: Path) -> None:
    plain, hostile = tmp_path / "plain", tmp_path / "hostile"
    for folder in (plain, hostile):
        write_media(folder)
    write_hour_wav(hostile / "hour.wav")  # 635 MB, sparse on disk
    (hostile / "strip.png").write_bytes(strip_png())
    base = indexer_peak(plain, tmp_path / "plain_index", search_checkpoint)
    heavy = indexer_peak(hostile, tmp_path / "hostile_index", search_checkpoint)
    assert (base["added"], heavy["added"], heavy["failed"]) == (9, 10, 1)
    assert (heavy["peak_kb"] - base["peak_kb"]) / 1024 < MEMORY_MARGIN_MB, (base, heavy)
