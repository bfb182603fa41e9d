"""ONNX Runtime as a backend (an image and a text tower): parity with PyTorch fp32 (max abs difference of unit
embeddings ≤ 1e-4 for onnx, cosine ≥ 0.99 for onnx-int8), any batch size, one export per model reused from the cache."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from runtime_models import batches, two_tower_model, uneven_rows

pytest.importorskip("onnxruntime")

from omnibind.errors import InputError
from omnibind.export import onnx as exporter
from omnibind.runtime import apply_runtime, onnx_backend
from omnibind.search.identity import fingerprint

PARITY = 1e-4
INT8_MIN_COSINE = 0.99


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's ONNX cache after one export of `two_tower_model()` (both onnx paths then read it)."""
    folder = tmp_path_factory.getbasetemp() / "onnx-cache"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OMNIBIND_CACHE", str(folder))
        apply_runtime(two_tower_model(), "onnx")
    return folder


def test_onnx_matches_pytorch_fp32_at_any_batch_size(exported: Path,
                                                     two_tower_reference: dict[str, torch.Tensor]) -> None:
    model = two_tower_model()
    assert apply_runtime(model, "onnx").backend == "onnxruntime"
    for modality, x in batches().items():
        if modality not in model.modalities:
            continue
        got = model.encode(modality, x)
        assert got.dtype == torch.float32
        assert (got - two_tower_reference[modality]).abs().max().item() <= PARITY
        assert torch.allclose(model.encode(modality, x[:1]), two_tower_reference[modality][:1], atol=PARITY)


def test_onnx_int8_stays_close_to_fp32(exported: Path, two_tower_reference: dict[str, torch.Tensor]) -> None:
    model = two_tower_model()
    apply_runtime(model, "onnx-int8")
    for modality, x in batches().items():
        if modality not in model.modalities:
            continue
        assert (model.encode(modality, x) * two_tower_reference[modality]).sum(-1).min().item() >= INT8_MIN_COSINE
    graphs = list(exported.rglob(f"*{onnx_backend.INT8_SUFFIX}"))
    assert {g.name for g in graphs} == {f"{m}{onnx_backend.INT8_SUFFIX}" for m in model.modalities}


def test_the_export_is_reused_and_another_model_gets_its_own(exported: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_export(*args: object, **kwargs: object) -> None:
        raise AssertionError("exported again")

    monkeypatch.setattr(exporter, "export_onnx", no_export)
    apply_runtime(two_tower_model(), "onnx")  # same weights: the cached graphs
    with pytest.raises(AssertionError, match="exported again"):
        apply_runtime(two_tower_model(seed=1), "onnx")  # other weights: a new export
    assert not [p for p in exported.iterdir() if p.name.startswith(".")]  # no half-written export left behind


def test_a_missing_onnxruntime_is_named_with_the_alternatives(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(__import__("sys").modules, "onnxruntime", None)
    with pytest.raises(InputError, match=r"--runtime: the ONNX paths need onnxruntime.*--runtime fp32"):
        apply_runtime(two_tower_model(), "onnx")


def test_the_runtime_exports_at_the_attention_opset_and_falls_back(exported: Path, monkeypatch: pytest.MonkeyPatch,
                                                                    two_tower_reference: dict[str, torch.Tensor]
                                                                    ) -> None:
    opsets = onnx_backend.runtime_opsets()
    folders = {m.parent.name for m in exported.rglob("manifest.json")}
    assert folders and all(f.endswith(f"-opset{opsets[0]}") for f in folders)  # the preferred opset only
    if len(opsets) == 1:
        pytest.skip("this onnxruntime runs only the exporter's default opset")
    real = exporter.export_onnx

    def refuse_new_opset(model, out, opset=exporter.OPSET, **kwargs):  # type: ignore[no-untyped-def]
        if opset == opsets[0]:
            raise exporter.ExportError("not at this opset")
        return real(model, out, opset=opset, **kwargs)

    monkeypatch.setattr(exporter, "export_onnx", refuse_new_opset)
    model = two_tower_model(seed=2)
    apply_runtime(model, "onnx")
    assert any(m.parent.name.endswith(f"-opset{opsets[-1]}") for m in exported.rglob("manifest.json"))
    reference = two_tower_model(seed=2)
    x = batches()["text"]
    assert (model.encode("text", x) - reference.encode("text", x)).abs().max().item() <= PARITY

    def no_export(*args: object, **kwargs: object) -> None:
        raise AssertionError("exported again")

    monkeypatch.setattr(exporter, "export_onnx", no_export)
    apply_runtime(two_tower_model(seed=2), "onnx-int8")  # the older opset's export is found, not retried


def weight_scales(graph_file: Path) -> list[tuple[int, tuple[int, ...]]]:
    """(output channels, scale shape) of every quantized weight of an int8 graph (ONNX Runtime names a weight's
    int8 tensor `<w>_quantized` and its scale `<w>_scale`)."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(graph_file)).graph
    initializers = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    found = []
    for node in graph.node:
        if node.op_type == "MatMulInteger":
            weight = node.input[1]
            scale = initializers[weight.removesuffix("_quantized") + "_scale"]
            found.append((initializers[weight].shape[-1], scale.shape))
    return found


def test_onnx_int8_quantizes_weights_per_output_channel_and_is_closer_to_fp32(onnx_cache: Path) -> None:
    reference = uneven_rows(two_tower_model(seed=3))
    x = batches()
    errors = {}
    for runtime in ("onnx-int8", "onnx-int8-per-tensor"):
        model = uneven_rows(two_tower_model(seed=3))
        apply_runtime(model, runtime)
        errors[runtime] = {m: 1 - (model.encode(m, x[m]) * reference.encode(m, x[m])).sum(-1).mean().item()
                           for m in model.modalities}
    folder = next(p.parent for p in onnx_cache.rglob("manifest.json") if p.parent.name.startswith(fingerprint(model)))
    for modality in reference.modalities:
        assert errors["onnx-int8"][modality] <= errors["onnx-int8-per-tensor"][modality], errors
        per_channel = weight_scales(folder / f"{modality}{onnx_backend.INT8_SUFFIX}")
        assert per_channel and all(shape == (channels,) for channels, shape in per_channel)
        per_tensor = weight_scales(folder / f"{modality}{onnx_backend.PER_TENSOR_INT8_SUFFIX}")
        assert len(per_tensor) == len(per_channel) and all(shape == () for _, shape in per_tensor)
