"""The `omnibind` command end to end on a tiny checkpoint: info, embed, classify, create, tokenizer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import omnibind
from omnibind.cli import app

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def test_info(tiny_checkpoint: Path) -> None:
    result = invoke("info", tiny_checkpoint)
    assert result.exit_code == 0, result.output
    for word in ("image", "text", "audio", "32px", "embedding dim 32"):
        assert word in result.output


def test_embed_npy_matches_python_api(tiny_checkpoint: Path, media_files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "emb.npy"
    result = invoke("embed", media_files["photo"], media_files["tone"], "-t", "a cat", "-m", tiny_checkpoint,
                    "-o", out, "--device", "cpu", "--runtime", "fp32")  # the default may be bf16 on this CPU
    assert result.exit_code == 0, result.output
    vectors = np.load(out)
    model = omnibind.load(tiny_checkpoint)
    expected = [model.encode("image", media_files["photo"]), model.encode("audio", media_files["tone"]),
                model.encode("text", "a cat")]
    assert vectors.shape == (3, 32)
    for row, vector in zip(vectors, expected, strict=True):
        assert np.abs(row - vector.detach().numpy()[0]).max() < 1e-5


def test_embed_jsonl(tiny_checkpoint: Path, media_files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "emb.jsonl"
    result = invoke("embed", media_files["drawing"], media_files["chirp"], "-m", tiny_checkpoint, "-o", out)
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["modality"] for r in records] == ["image", "audio"]
    assert records[0]["source"] == str(media_files["drawing"]) and len(records[0]["embedding"]) == 32


@pytest.mark.parametrize("as_json", [False, True])
def test_classify(tiny_checkpoint: Path, media_files: dict[str, Path], as_json: bool) -> None:
    args = ["classify", media_files["drawing"], "--labels", "circle, square ,cat", "-m", tiny_checkpoint, "--top", 2]
    result = invoke(*args, *(["--json"] if as_json else []))
    assert result.exit_code == 0, result.output
    if as_json:
        payload = json.loads(result.output)
        assert payload["modality"] == "image" and len(payload["results"]) == 2
        assert {r["label"] for r in payload["results"]} <= {"circle", "square", "cat"}
    else:
        assert "probability" in result.output


def test_create_and_tokenizer_train(tmp_path: Path) -> None:
    from helpers import tiny_corpus

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(tiny_corpus(500)))
    result = invoke("tokenizer", "train", corpus, tmp_path / "sp", "--vocab-size", 50)
    assert result.exit_code == 0, result.output
    result = invoke("create", "Ti/16", tmp_path / "model", "--modalities", "image,text",
                    "--tokenizer", tmp_path / "sp.model")
    assert result.exit_code == 0, result.output
    model = omnibind.load(tmp_path / "model")
    assert model.modalities == ("image", "text")
    assert model.config.towers["text"].vocab_size == model.processors["text"].vocab_size


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["info", "/no/such/model"], "no such folder"),
        (["embed", "notes.txt", "-m", "{ckpt}"], "unknown file type"),
        (["embed", "-m", "{ckpt}"], "nothing to embed"),
        (["embed", "-t", "x", "-m", "{ckpt}", "-o", "out.csv"], "unknown output type"),
        (["classify", "missing.png", "--labels", "a,b", "-m", "{ckpt}"], "file not found"),
        (["classify", "{photo}", "--labels", " , ", "-m", "{ckpt}"], "label"),
        (["classify", "{photo}", "--labels", "a,b", "-m", "{ckpt}", "--runtime", "fp64"], "--runtime"),
        (["embed", "-t", "   ", "-m", "{ckpt}"], "empty text"),
    ],
)
def test_bad_input_gives_one_clear_line(tiny_checkpoint: Path, media_files: dict[str, Path], args: list[str],
                                        message: str) -> None:
    filled = [a.format(ckpt=tiny_checkpoint, photo=media_files["photo"]) for a in args]
    result = invoke(*filled)
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output
