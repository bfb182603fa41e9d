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
