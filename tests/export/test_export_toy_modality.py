"""A modality registered from a test file alone (tests/toy_modality.py: depth maps) exports to ONNX like the
built-in ones: its graph takes the modality's input name and shape, and matches PyTorch on real files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import omnibind
from helpers import TINY_TOWER
from omnibind.export.onnx import export_onnx
from toy_modality import DEPTH, depth_map, npy_bytes

onnxruntime = pytest.importorskip("onnxruntime")
pytestmark = pytest.mark.slow
TOL = 1e-4


def test_depth_tower_exports_and_matches_pytorch(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = omnibind.create("Ti/16", modalities=("image", "depth"), embed_dim=32,
                            image=dict(TINY_TOWER, image_size=32, patch_size=8),
                            depth=dict(TINY_TOWER, size=16, patch_size=4)).eval()
    towers = export_onnx(model, tmp_path, model_name="toy")
    assert [t.modality for t in towers] == ["image", "depth"]
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["towers"]["depth"]["input_name"] == DEPTH.input_name == "depth"
    assert manifest["towers"]["depth"]["input_shape"] == ["batch", 1, 16, 16]
    assert manifest["config"]["towers"]["depth"]["size"] == 16
    files = [npy_bytes(depth_map(label, seed=label)) for label in range(3)]
    inputs = model.preprocess("depth", files)
    session = onnxruntime.InferenceSession(str(tmp_path / "depth.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {"depth": inputs.numpy()})[0]
    with torch.no_grad():
        want = model.encode("depth", files).numpy()
    assert np.abs(got - want).max() <= TOL
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_depth_checkpoint_round_trip_and_info(tmp_path: Path) -> None:
    """A checkpoint with the plugin's tower saves, loads and embeds identically."""
    torch.manual_seed(0)
    model = omnibind.create("Ti/16", modalities=("depth",), embed_dim=32, depth=dict(TINY_TOWER, size=16, patch_size=4))
    omnibind.save(model, tmp_path / "ckpt")
    again = omnibind.load(tmp_path / "ckpt")
    files = [npy_bytes(depth_map(1, seed=0))]
    with torch.no_grad():
        assert torch.equal(again.encode("depth", files), model.eval().encode("depth", files))
