"""ONNX export: one graph per tower, dynamic batch, onnxruntime within 1e-4 of PyTorch on random inputs and
on real preprocessed media; the CLI command and its errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import omnibind
import omnibind.modalities as registry
from helpers import TINY_TOWER, tiny_model
from omnibind.cli import app
from omnibind.export.onnx import OUTPUT_NAME, example_input, export_onnx

onnxruntime = pytest.importorskip("onnxruntime")
pytestmark = pytest.mark.slow
TOL = 1e-4


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory, spiece_model: Path):
    model = tiny_model(spiece_model)
    out = tmp_path_factory.mktemp("onnx")
    return model, out, export_onnx(model, out, model_name="tiny")


def run_onnx(path: Path, inputs: torch.Tensor) -> np.ndarray:
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: inputs.numpy()})[0]


def test_one_graph_per_tower_with_a_manifest(exported) -> None:
    _, out, towers = exported
    assert [t.modality for t in towers] == ["image", "text", "audio"]
    assert sorted(p.name for p in out.iterdir()) == ["audio.onnx", "image.onnx", "manifest.json", "spiece.model",
                                                      "text.onnx"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["embed_dim"] == 32 and manifest["tokenizer"] == "spiece.model"
    assert manifest["towers"]["image"]["input_shape"] == ["batch", 3, 32, 32]
    assert manifest["towers"]["text"]["input_dtype"] == "int64"
    for tower in towers:
        session = onnxruntime.InferenceSession(str(out / tower.file), providers=["CPUExecutionProvider"])
        (graph_input,), (graph_output,) = session.get_inputs(), session.get_outputs()
        assert graph_input.name == registry.get(tower.modality).input_name and graph_output.name == OUTPUT_NAME
        assert isinstance(graph_input.shape[0], str)  # the batch axis is symbolic
        assert tower.max_abs_diff <= TOL


@pytest.mark.parametrize("batch", [1, 5])
@pytest.mark.parametrize("modality", ["image", "text", "audio"])
def test_onnxruntime_matches_pytorch_on_random_inputs(exported, modality: str, batch: int) -> None:
    model, out, _ = exported
    inputs = example_input(model.config.towers[modality], batch, seed=batch + 10)
    got = run_onnx(out / f"{modality}.onnx", inputs)
    with torch.no_grad():
        want = model.encode(modality, inputs).numpy()
    assert got.shape == (batch, 32)
    assert np.abs(got - want).max() < TOL
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_onnxruntime_matches_pytorch_on_real_media(exported, media_files: dict[str, Path]) -> None:
    model, out, _ = exported
    batches = {
        "image": model.preprocess("image", [media_files["photo"], media_files["drawing"]]),
        "audio": model.preprocess("audio", [media_files["tone"], media_files["chirp"]]),
        "text": model.preprocess("text", ["a photo of a cat", "the sound of a piano"]),
    }
    for modality, inputs in batches.items():
        with torch.no_grad():
            want = model.encode(modality, inputs).numpy()
        assert np.abs(run_onnx(out / f"{modality}.onnx", inputs) - want).max() < TOL


def image_only_model():
    torch.manual_seed(0)
    return omnibind.create("Ti/16", modalities=("image",), embed_dim=32,
                           image=dict(TINY_TOWER, image_size=32, patch_size=8)).eval()


def test_cli_exports_only_the_towers_a_model_has(tmp_path: Path) -> None:
    checkpoint = omnibind.save(image_only_model(), tmp_path / "image_only")
    result = CliRunner().invoke(app, ["export", "onnx", str(checkpoint), str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "image.onnx" in result.output and "pixels" in result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["image.onnx", "manifest.json"]


def test_cli_names_a_missing_model(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["export", "onnx", str(tmp_path / "nope"), str(tmp_path / "out")])
    assert result.exit_code == 2 and "no such folder" in result.output
