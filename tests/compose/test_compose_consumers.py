"""A composed checkpoint is an ordinary checkpoint for the rest of omnibind: ONNX export (each tower's graph
equal to PyTorch's) and the search index (a folder of pictures and sounds indexed and queried by text and by
a sound). Slow: export and the index take a few seconds each."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from compose_fixtures import AUDIO, IMAGE, TEXT, specs
from typer.testing import CliRunner

import omnibind
from omnibind.cli import app
from omnibind.compose import compose, save_composed

pytestmark = pytest.mark.slow


def test_export_and_search_accept_a_composed_model(sources: dict[str, Path], tmp_path: Path,
                                                   media_files: dict[str, Path]) -> None:
    onnxruntime = pytest.importorskip("onnxruntime")
    from omnibind.export.onnx import export_onnx

    model = compose(specs(sources), connector="mlp")
    folder = save_composed(model, tmp_path / "composed")
    towers = export_onnx(omnibind.load(folder), tmp_path / "onnx", model_name="composed")
    assert [t.modality for t in towers] == [IMAGE, TEXT, AUDIO] and all(t.max_abs_diff <= 1e-4 for t in towers)
    for modality, inputs in ((TEXT, model.preprocess(TEXT, ["a red car", "piano"])),
                             (AUDIO, model.preprocess(AUDIO, [media_files["tone"]]))):
        session = onnxruntime.InferenceSession(str(tmp_path / "onnx" / f"{modality}.onnx"),
                                               providers=["CPUExecutionProvider"])
        got = session.run(None, {session.get_inputs()[0].name: inputs.numpy()})[0]
        with torch.no_grad():
            assert np.abs(got - model.encode(modality, inputs).numpy()).max() < 1e-4

    media = tmp_path / "media"
    media.mkdir()
    for name in ("drawing", "tone", "chirp"):
        (media / media_files[name].name).write_bytes(media_files[name].read_bytes())
    runner = CliRunner()
    result = runner.invoke(app, ["index", str(media), "--model", str(folder), "--index", str(tmp_path / "idx")])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["search", str(tmp_path / "idx"), "--audio", str(media / "tone.wav"), "--json"])
    assert result.exit_code == 0, result.output
    found = json.loads(result.output)["results"]
    assert {Path(r["path"]).name for r in found} == {"circle.png", "tone.wav", "chirp.flac"}
    assert Path(found[0]["path"]).name == "tone.wav" and found[0]["score"] == pytest.approx(1.0, abs=1e-5)
    with torch.no_grad():  # the scores are the composed model's: the sound against the picture, in the base space
        picture = model.encode(IMAGE, [media / "circle.png"])[0]
        sound = model.encode(AUDIO, [media / "tone.wav"])[0]
    score = next(r["score"] for r in found if r["path"].endswith("circle.png"))
    assert score == pytest.approx(float(picture @ sound), abs=2e-3)  # the indexer batches and decodes on its own
    result = runner.invoke(app, ["search", str(tmp_path / "idx"), "a red circle", "--json"])
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.output)["results"]) == 3
