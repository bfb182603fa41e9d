"""Runtime names, their JSON record, and the default path chosen from what the CPU computes natively."""

from __future__ import annotations

import pytest

from omnibind.errors import InputError
from omnibind.runtime import apply, detect
from omnibind.runtime.record import check_same_runtime, recorded_spec
from omnibind.runtime.spec import CHOICES, RuntimeSpec, parse_runtime


@pytest.mark.parametrize("name", [c for c in CHOICES if c != "auto"])
def test_every_name_parses_and_round_trips_through_its_record(name: str) -> None:
    spec = parse_runtime(name)
    assert spec is not None and spec.name == name
    assert RuntimeSpec.from_dict(spec.to_dict()) == spec
    assert spec.backend == ("onnxruntime" if name.startswith("onnx") else "torch")


def test_names_are_case_and_space_tolerant_and_auto_is_unresolved() -> None:
    assert parse_runtime(" BF16+Compile ") == RuntimeSpec("bf16", compile=True)
    assert parse_runtime("auto") is None


@pytest.mark.parametrize(("name", "problem"), [("fp16", "got 'fp16'"), ("onnx+compile", "PyTorch paths only"),
                                               ("bf16+fast", "got 'bf16+fast'")])
def test_unknown_names_are_refused_naming_the_option_and_the_choices(name: str, problem: str) -> None:
    with pytest.raises(InputError, match=r"--runtime") as caught:
        parse_runtime(name)
    assert problem in str(caught.value) and "fp32, bf16, int8" in str(caught.value)


def test_a_recorded_runtime_must_name_a_path() -> None:
    with pytest.raises(InputError, match="runtime"):
        RuntimeSpec.from_dict({"path": "bf16"})
    with pytest.raises(InputError, match="resolved path"):
        RuntimeSpec.from_dict({"name": "auto"})


def test_auto_is_bf16_where_the_cpu_has_native_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(detect, "cpu_flags", lambda: frozenset({"avx512f", "avx512_bf16"}))
    monkeypatch.setattr(detect.torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True, raising=False)
    assert detect.bf16_supported()
    assert apply.resolve("auto") == RuntimeSpec("bf16")
    assert apply.resolve(None, device="cuda") == RuntimeSpec("fp32")  # the GPU keeps the dtype it was loaded in


@pytest.mark.parametrize("flags", [frozenset(), frozenset({"avx2", "avx512f", "avx512_vnni"})])
def test_auto_falls_back_to_fp32_without_native_bf16(monkeypatch: pytest.MonkeyPatch, flags: frozenset[str]) -> None:
    monkeypatch.setattr(detect, "cpu_flags", lambda: flags)
    assert not detect.bf16_supported()
    assert apply.resolve("auto") == RuntimeSpec("fp32")
    assert apply.resolve("bf16") == RuntimeSpec("bf16")  # asked for by name, it is used (emulated, slower)


def test_matmul_features_lists_the_bf16_and_int8_flags_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(detect, "cpu_flags", lambda: frozenset({"avx2", "amx_bf16", "avx512_vnni", "amx_tile"}))
    assert detect.matmul_features() == ["amx_bf16", "avx512_vnni"]
    monkeypatch.setattr(detect, "cpu_flags", lambda: frozenset())
    assert detect.matmul_features() == []


def test_auto_falls_back_to_fp32_when_onednn_refuses_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(detect, "cpu_flags", lambda: frozenset({"amx_bf16"}))
    monkeypatch.setattr(detect.torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False, raising=False)
    assert apply.resolve("auto") == RuntimeSpec("fp32")


def test_an_index_is_extended_only_by_the_path_that_built_it() -> None:
    bf16 = RuntimeSpec("bf16").to_dict()
    check_same_runtime("idx", bf16, RuntimeSpec("bf16"), has_items=True)
    check_same_runtime("idx", bf16, RuntimeSpec("int8"), has_items=False)  # empty: nothing to be consistent with
    with pytest.raises(InputError, match=r"idx: this index was built with --runtime bf16 and this run uses int8"):
        check_same_runtime("idx", bf16, RuntimeSpec("int8"), has_items=True)
    assert recorded_spec(None, has_items=True) == RuntimeSpec("fp32")  # an index from before the record
    assert recorded_spec(None, has_items=False) is None


@pytest.mark.parametrize(("name", "spec"), [("int8-per-tensor", RuntimeSpec("int8", per_tensor=True)),
                                            ("onnx-int8-per-tensor", RuntimeSpec("onnx-int8", per_tensor=True)),
                                            ("int8-per-tensor+compile",
                                             RuntimeSpec("int8", compile=True, per_tensor=True))])
def test_the_older_per_tensor_int8_is_still_named_and_recorded(name: str, spec: RuntimeSpec) -> None:
    assert parse_runtime(name) == spec and spec.name == name and spec.weights == "per-tensor"
    assert RuntimeSpec.from_dict(spec.to_dict()) == spec
    assert name not in CHOICES  # accepted for older indexes, not offered


def test_int8_records_its_weight_scheme_and_an_older_record_means_per_tensor() -> None:
    assert RuntimeSpec("int8").to_dict()["int8_weights"] == "per-channel"
    assert "int8_weights" not in RuntimeSpec("bf16").to_dict()
    older = {"name": "int8", "path": "int8", "compile": False, "backend": "torch"}  # before per-channel weights
    assert RuntimeSpec.from_dict(older) == RuntimeSpec("int8", per_tensor=True)
    assert RuntimeSpec.from_dict({"name": "onnx-int8"}).name == "onnx-int8-per-tensor"
    assert RuntimeSpec.from_dict({"name": "bf16"}) == RuntimeSpec("bf16")
    with pytest.raises(InputError, match="int8 weights recorded as 'per-row'"):
        RuntimeSpec.from_dict({"name": "int8", "int8_weights": "per-row"})
    with pytest.raises(ValueError, match="per-tensor weights apply to int8 and onnx-int8 only"):
        RuntimeSpec("bf16", per_tensor=True)
    with pytest.raises(InputError, match="PyTorch paths only"):
        parse_runtime("onnx-int8-per-tensor+compile")
    with pytest.raises(InputError, match="got 'bf16-per-tensor'"):
        parse_runtime("bf16-per-tensor")


def test_an_index_of_per_tensor_int8_vectors_is_not_extended_with_per_channel_ones() -> None:
    older = {"name": "int8", "path": "int8", "compile": False, "backend": "torch"}
    check_same_runtime("idx", older, RuntimeSpec("int8", per_tensor=True), has_items=True)
    with pytest.raises(InputError, match=r"idx: this index was built with --runtime int8-per-tensor and this run "
                                         r"uses int8 \(int8 weights quantized per-tensor there, per-channel here"):
        check_same_runtime("idx", older, RuntimeSpec("int8"), has_items=True)
