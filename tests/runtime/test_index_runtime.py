"""The index records the inference path that built it; updates must use it, queries (search, serve) use it by
default, and the `--runtime` option of embed, index, search and serve reaches the model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from runtime_models import write_media
from typer.testing import CliRunner

import omnibind
from helpers import tiny_model
from omnibind.cli import app
from omnibind.errors import InputError
from omnibind.runtime import apply_runtime, runtime_of
from omnibind.runtime.spec import RuntimeSpec
from omnibind.search import update_index
from omnibind.search.cli import index_runtime, open_searcher
from omnibind.search.store import Store

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("restore_threads")


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture
def checkpoint(tmp_path: Path, spiece_model: Path) -> Path:
    return omnibind.save(tiny_model(spiece_model), tmp_path / "model")


def recorded(index: Path) -> object:
    store = Store(index)
    try:
        return store.meta("runtime")
    finally:
        store.close()


def test_the_index_records_its_path_and_queries_reuse_it(tmp_path: Path, checkpoint: Path) -> None:
    media, index = write_media(tmp_path / "media"), tmp_path / "index"
    model = omnibind.load(checkpoint)
    apply_runtime(model, "int8")
    report = update_index(index, media, model, checkpoint)
    assert report.added == 7
    assert recorded(index) == RuntimeSpec("int8").to_dict()
    assert index_runtime(index) == "int8"

    searcher = open_searcher(index, None, "cpu")
    assert runtime_of(searcher.model) == RuntimeSpec("int8")
    # A stored picture, embedded again as a query on the same path, finds itself first. Not with cosine 1 to
    # 1e-6: dynamic int8 quantizes activations with one scale per batch, so a vector shifts a little with the
    # batch it was embedded in (here a batch of 5 against a query alone).
    picture = str(media / "picture3.png")
    hits = searcher.search("image", picture, k=1)
    assert Path(hits[0].item.path).name == "picture3.png" and hits[0].score == pytest.approx(1.0, abs=2e-3)

    from fastapi.testclient import TestClient

    from omnibind.search.service import create_app

    with TestClient(create_app(searcher)) as client:
        assert client.get("/health").json()["runtime"] == "int8"


def test_another_path_cannot_extend_the_index(tmp_path: Path, checkpoint: Path) -> None:
    media, index = write_media(tmp_path / "media"), tmp_path / "index"
    model = omnibind.load(checkpoint)
    apply_runtime(model, "int8")
    update_index(index, media, model, checkpoint)
    write_media(media / "more", pictures=1, sounds=0)
    other = omnibind.load(checkpoint)
    apply_runtime(other, "fp32")
    with pytest.raises(InputError, match=r"built with --runtime int8 and this run uses fp32 \(expected --runtime int8"):
        update_index(index, media, other, checkpoint)


def test_an_index_from_before_the_record_counts_as_fp32(tmp_path: Path, checkpoint: Path) -> None:
    media, index = write_media(tmp_path / "media"), tmp_path / "index"
    update_index(index, media, omnibind.load(checkpoint), checkpoint)  # no runtime applied: fp32 weights
    store = Store(index)
    try:
        store.set_meta({"runtime": None})  # as older omnibind wrote it: no record
    finally:
        store.close()
    assert index_runtime(index) == "fp32"
    assert index_runtime(tmp_path / "nothing-here") is None


def test_an_index_of_per_tensor_int8_is_queried_and_extended_on_per_tensor_int8(tmp_path: Path,
                                                                                checkpoint: Path) -> None:
    media, index = write_media(tmp_path / "media"), tmp_path / "index"
    model = omnibind.load(checkpoint)
    apply_runtime(model, "int8-per-tensor")  # the vectors int8 gave before it quantized weights per channel
    update_index(index, media, model, checkpoint)
    store = Store(index)
    try:
        store.set_meta({"runtime": {"name": "int8", "path": "int8", "compile": False, "backend": "torch"}})
    finally:
        store.close()
    assert index_runtime(index) == "int8-per-tensor"
    searcher = open_searcher(index, None, "cpu")
    assert runtime_of(searcher.model) == RuntimeSpec("int8", per_tensor=True)  # queries match the stored vectors
    hits = searcher.search("image", str(media / "picture3.png"), k=1)
    assert Path(hits[0].item.path).name == "picture3.png" and hits[0].score == pytest.approx(1.0, abs=2e-3)

    write_media(media / "more", pictures=1, sounds=0)
    mixed = invoke("index", media, "-m", checkpoint, "--index", index, "--runtime", "int8", "--device", "cpu")
    assert mixed.exit_code == 2
    assert "built with --runtime int8-per-tensor and this run uses int8 (int8 weights quantized per-tensor" \
        in flat(mixed.output)
    again = invoke("index", media, "-m", checkpoint, "--index", index, "--device", "cpu", "--threads", "1")
    assert again.exit_code == 0, again.output
    assert "1 new" in flat(again.output) and recorded(index) == RuntimeSpec("int8", per_tensor=True).to_dict()


def test_the_commands_take_the_option_and_updates_reuse_the_recorded_path(tmp_path: Path, checkpoint: Path) -> None:
    media, index = write_media(tmp_path / "media"), tmp_path / "index"
    first = invoke("index", media, "-m", checkpoint, "--index", index, "--runtime", "int8", "--device", "cpu",
                   "--threads", "1")
    assert first.exit_code == 0, first.output
    write_media(media / "more", pictures=1, sounds=0)
    again = invoke("index", media, "-m", checkpoint, "--index", index, "--device", "cpu")
    assert again.exit_code == 0, again.output
    assert "1 new" in flat(again.output) and recorded(index) == RuntimeSpec("int8").to_dict()

    mixed = invoke("index", media, "-m", checkpoint, "--index", index, "--runtime", "bf16", "--device", "cpu")
    assert mixed.exit_code == 2
    assert "built with --runtime int8 and this run uses bf16" in flat(mixed.output)

    found = invoke("search", index, "--image", media / "picture1.png", "-k", "1", "--json")
    assert found.exit_code == 0, found.output
    assert "picture1.png" in found.output
    overridden = invoke("search", index, "--image", media / "picture1.png", "-k", "1", "--runtime", "fp32")
    assert overridden.exit_code == 0, overridden.output
    assert "was built with --runtime int8; queries are embedded with fp32" in flat(overridden.output)


def test_embed_runs_the_chosen_path(tmp_path: Path, checkpoint: Path) -> None:
    media = write_media(tmp_path / "media", pictures=3, sounds=1)
    files = sorted(media.iterdir())
    outputs = {}
    for path in ("fp32", "bf16", "int8"):
        out = tmp_path / f"{path}.npy"
        result = invoke("embed", *files, "-t", "a red circle", "-m", checkpoint, "-o", out, "--runtime", path,
                        "--device", "cpu", "--batch-size", "2")
        assert result.exit_code == 0, result.output
        assert f"({path})" in result.output
        outputs[path] = np.load(out)
    for path in ("bf16", "int8"):
        assert (outputs[path] * outputs["fp32"]).sum(-1).min() >= 0.99


def test_a_misspelt_runtime_fails_before_anything_loads(tmp_path: Path) -> None:
    result = invoke("embed", "-t", "hello", "-m", tmp_path / "no-such-model", "--runtime", "fp8")
    assert result.exit_code == 2
    assert "--runtime: got 'fp8'" in flat(result.output)
