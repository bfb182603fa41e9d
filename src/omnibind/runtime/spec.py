"""Inference paths by name: what `--runtime` accepts ("auto", "fp32", "bf16", "int8", "onnx", "onnx-int8", with
"+compile" for the PyTorch ones), parsed once into a RuntimeSpec that an index records and its queries reuse.

The int8 paths quantize weights per output channel. "int8-per-tensor" and "onnx-int8-per-tensor" (accepted, not
advertised) are the per-tensor scheme omnibind used before, kept so an index built with it is still extended and
queried with the vectors it holds (a record of int8 without a weight scheme is one of those)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from omnibind.errors import InputError

AUTO = "auto"
TORCH_PATHS = ("fp32", "bf16", "int8")
ONNX_PATHS = ("onnx", "onnx-int8")
PATHS = (*TORCH_PATHS, *ONNX_PATHS)
QUANTIZED_PATHS = ("int8", "onnx-int8")
COMPILE_SUFFIX = "+compile"
PER_TENSOR_SUFFIX = "-per-tensor"
CHOICES = (AUTO, *PATHS, *(p + COMPILE_SUFFIX for p in TORCH_PATHS))
LEGACY_CHOICES = (*(p + PER_TENSOR_SUFFIX for p in QUANTIZED_PATHS), "int8" + PER_TENSOR_SUFFIX + COMPILE_SUFFIX)
WEIGHTS_KEY = "int8_weights"  # how a recorded int8 path quantized its weights: "per-channel" or "per-tensor"
HELP = ("Inference path: auto (bf16 where the CPU computes it natively, else fp32), fp32, bf16, int8 (dynamic "
        "int8 linears, weights per output channel), onnx or onnx-int8 (ONNX Runtime); add +compile to a PyTorch "
        "path for torch.compile.")


@dataclass(frozen=True)
class RuntimeSpec:
    """One inference path: its name (one of PATHS), whether the PyTorch towers run under torch.compile, and for
    the int8 paths whether weights are quantized per tensor (the older scheme) instead of per output channel."""

    path: str
    compile: bool = False
    per_tensor: bool = False

    def __post_init__(self) -> None:
        """Per-tensor weights name an int8 path only (the others keep float weights)."""
        if self.per_tensor and self.path not in QUANTIZED_PATHS:
            raise ValueError(f"per-tensor weights apply to {' and '.join(QUANTIZED_PATHS)} only, not {self.path}")

    @property
    def name(self) -> str:
        """The path as `--runtime` spells it: "bf16", "int8+compile", "onnx", "int8-per-tensor"."""
        return self.path + (PER_TENSOR_SUFFIX if self.per_tensor else "") + (COMPILE_SUFFIX if self.compile else "")

    @property
    def weights(self) -> str | None:
        """How an int8 path quantizes its weights ("per-channel" or "per-tensor"); None for float paths."""
        if self.path not in QUANTIZED_PATHS:
            return None
        return "per-tensor" if self.per_tensor else "per-channel"

    @property
    def backend(self) -> str:
        """"onnxruntime" for the ONNX paths, "torch" for the others."""
        return "onnxruntime" if self.path in ONNX_PATHS else "torch"

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form, as an index's meta table records it (with the weight scheme for int8 paths)."""
        record = {"name": self.name, "path": self.path, "compile": self.compile, "backend": self.backend}
        return record if self.weights is None else {**record, WEIGHTS_KEY: self.weights}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RuntimeSpec:
        """Inverse of `to_dict` (the name and the weight scheme are read, so the recorded form may grow); an int8
        record without a scheme was written before per-channel weights, so it means per tensor."""
        name = data.get("name") if isinstance(data, dict) else None
        if not isinstance(name, str):
            raise InputError("runtime", f"recorded as {data!r}", "a JSON object with a 'name' such as 'bf16'")
        spec = parse_runtime(name)
        if spec is None:
            raise InputError("runtime", "recorded as 'auto'", "the resolved path that built the index")
        if spec.weights is None or spec.per_tensor:
            return spec
        weights = data.get(WEIGHTS_KEY, "per-tensor")
        if weights not in ("per-channel", "per-tensor"):
            raise InputError("runtime", f"int8 weights recorded as {weights!r}", "'per-channel' or 'per-tensor'")
        return replace(spec, per_tensor=weights == "per-tensor")


def parse_runtime(text: str) -> RuntimeSpec | None:
    """The spec `text` names, or None for "auto" (resolved per machine by `omnibind.runtime.resolve`)."""
    name = text.strip().lower()
    if name == AUTO:
        return None
    path, _, suffix = name.partition("+")
    if name not in CHOICES and name not in LEGACY_CHOICES:
        if suffix and path.removesuffix(PER_TENSOR_SUFFIX) in ONNX_PATHS:
            raise InputError("--runtime", f"got {text!r}: torch.compile applies to PyTorch paths only",
                             f"one of {', '.join(CHOICES)}")
        raise InputError("--runtime", f"got {text!r}", f"one of {', '.join(CHOICES)}")
    base = path.removesuffix(PER_TENSOR_SUFFIX)
    return RuntimeSpec(base, compile=bool(suffix), per_tensor=base != path)
