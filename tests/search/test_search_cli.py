"""`omnibind index` and `omnibind search` end to end on tiny checkpoints, including their one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from omnibind.cli import app

runner = CliRunner()


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def flat(text: str) -> str:
    """Output with rich's line wrapping undone."""
    return " ".join(text.split())


@pytest.fixture
def other_checkpoint(tmp_path: Path, spiece_model: Path) -> Path:
    """A model of the same shape as the index's, with other weights."""
    import omnibind
    from helpers import tiny_model

    return omnibind.save(tiny_model(spiece_model, seed=1), tmp_path / "other")


def test_index_then_reindex(media_dir: Path, tmp_path: Path, search_checkpoint: Path) -> None:
    (media_dir / "broken.jpg").write_bytes(b"not a jpeg")
    first = invoke("index", media_dir, "-m", search_checkpoint, "--index", tmp_path / "idx", "--device", "cpu")
    assert first.exit_code == 0, first.output
    output = flat(first.output)
    assert "9 new, 0 changed" in output and "1 failed" in output
    assert "broken.jpg: cannot decode image (not a recognised image format)" in output
    assert "holds 3 audio, 6 image" in output and "exact search over 6 vectors" in output
    second = invoke("index", media_dir, "-m", search_checkpoint, "--index", tmp_path / "idx")
    # A failure remembered from the first run is counted as such, not as unchanged (it is not retried).
    expected = "0 new, 0 changed, 0 re-stamped, 9 unchanged, 0 removed, 0 failed, 1 failed earlier"
    assert second.exit_code == 0 and expected in flat(second.output)


def test_approximate_index_states_its_recall(media_dir: Path, tmp_path: Path, search_checkpoint: Path) -> None:
    result = invoke("index", media_dir, "-m", search_checkpoint, "--index", tmp_path / "idx",
                    "--approximate-above", 2)
    assert result.exit_code == 0, result.output
    output = flat(result.output)
    assert "approximate search (IVF" in output and "recall@10 = 1.000 against exact search" in output


def test_search_by_text_image_and_audio(built_index) -> None:
    table = invoke("search", built_index.index, "a red circle", "-k", 4)
    assert table.exit_code == 0, table.output
    assert "score" in table.output and "modality" in table.output and table.output.count("│ image") + \
        table.output.count("│ audio") == 4

    by_image = invoke("search", built_index.index, "--image", built_index.media / "picture002.png", "--json", "-k", 2)
    payload = json.loads(by_image.output)
    assert payload["query"]["modality"] == "image" and len(payload["results"]) == 2
    assert payload["results"][0]["path"].endswith("picture002.png") and payload["results"][0]["score"] > 0.9999

    by_sound = invoke("search", built_index.index, "--audio", built_index.media / "tone000.wav", "--json",
                      "--modality", "audio")
    results = json.loads(by_sound.output)["results"]
    assert len(results) == 3 and {r["modality"] for r in results} == {"audio"}
    assert results[0]["path"].endswith("tone000.wav")


@pytest.mark.parametrize(("args", "message"), [
    (["{index}"], "got 0 queries (expected exactly one of TEXT, --image FILE, --audio FILE)"),
    (["{index}", "a dog", "--image", "{media}/picture000.png"], "got 2 queries"),
    (["{index}", "a dog", "--modality", "video"], "--modality: got 'video' (expected image or audio)"),
    (["{index}", "--image", "{media}/missing.png"], "missing.png: file not found"),
    (["{index}", "--image", "{media}/tone000.wav"], "cannot decode image"),
    (["{media}", "a dog"], "not an omnibind index"),
    (["{index}", "a dog", "--model", "{other}"], "was built with model"),
])
def test_search_errors_are_one_clear_line(built_index, other_checkpoint: Path, args: list[str], message: str) -> None:
    filled = [a.format(index=built_index.index, media=built_index.media, other=other_checkpoint) for a in args]
    result = invoke("search", *filled)
    assert result.exit_code == 2, result.output
    assert message in flat(result.output) and "Traceback" not in result.output


def test_image_text_index_refuses_audio_queries(media_dir: Path, tmp_path: Path, image_text_checkpoint: Path) -> None:
    indexed = invoke("index", media_dir, "-m", image_text_checkpoint, "--index", tmp_path / "idx")
    assert indexed.exit_code == 0 and "skipped 3 audio files: the model has no audio tower" in flat(indexed.output)
    result = invoke("search", tmp_path / "idx", "--audio", media_dir / "tone000.wav")
    assert result.exit_code == 2
    assert "cannot embed audio queries: it has no audio tower" in flat(result.output)
