"""`omnibind caption` and `omnibind ask` on a tiny transformers-written PaliGemma folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import omnibind
from generation.paligemma_folders import tiny_folder
from omnibind.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny PaliGemma checkpoint folder."""
    return tiny_folder(tmp_path_factory).path


def invoke(*args: object) -> tuple[int, str]:
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


def test_caption_writes_one_json_line_per_file(folder: Path, media_files: dict[str, Path]) -> None:
    files = [media_files["photo"], media_files["drawing"]]
    code, out = invoke("caption", *files, "-m", folder, "--json", "--max-tokens", "5", "--device", "cpu")
    assert code == 0, out
    rows = [json.loads(line) for line in out.splitlines()]
    model = omnibind.load(folder)
    expected = model.generate(["caption en"] * 2, image=files, max_new_tokens=5)
    assert [r["file"] for r in rows] == [str(f) for f in files]
    assert [r["caption"] for r in rows] == expected and all(r["prompt"] == "caption en" for r in rows)


def test_caption_with_a_prompt_and_beams(folder: Path, media_files: dict[str, Path]) -> None:
    code, out = invoke("caption", media_files["photo"], "-m", folder, "--prompt", "describe", "--beams", "2",
                       "--max-tokens", "4", "--device", "cpu")
    assert code == 0, out
    model = omnibind.load(folder)
    expected = model.generate("describe", image=media_files["photo"], beams=2, max_new_tokens=4)[0]
    assert out == f"{media_files['photo']}\t{expected}\n"


def test_ask_answers_a_question(folder: Path, media_files: dict[str, Path]) -> None:
    code, out = invoke("ask", media_files["photo"], "what is this?", "-m", folder, "--json", "--max-tokens", "4",
                       "--device", "cpu")
    assert code == 0, out
    answer = json.loads(out)
    model = omnibind.load(folder)
    assert answer["question"] == "what is this?" and answer["audio"] is None
    assert answer["answer"] == model.generate("what is this?", image=media_files["photo"], max_new_tokens=4)[0]


def test_errors_name_the_input(folder: Path, media_files: dict[str, Path], tiny_checkpoint: Path) -> None:
    code, out = invoke("ask", media_files["photo"], "what?", "-m", folder, "--audio", media_files["tone"])
    assert code == 2 and "tone.wav" in out and "not a file this generator reads (audio)" in out
    code, out = invoke("caption", media_files["photo"], "-m", tiny_checkpoint)
    assert code == 2 and "has no text decoder" in out
    code, out = invoke("caption", folder / "missing.png", "-m", folder)
    assert code == 2 and "missing.png: no such file" in out
