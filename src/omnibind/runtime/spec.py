"""Inference paths by name: what `--runtime` accepts ("auto", "fp32", "bf16", "int8", "onnx", "onnx-int8", with
"+compile" for the PyTorch ones), parsed once into a RuntimeSpec that an index records and its queries reuse."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from omnibind.errors import InputError

AUTO = "auto"
TORCH_PATHS = ("fp32", "bf16", "int8")
ONNX_PATHS = ("onnx", "onnx-int8")
PATHS = (*TORCH_PATHS, *ONNX_PATHS)
COMPILE_SUFFIX = "+compile"
CHOICES = (AUTO, *PATHS, *(p + COMPILE_SUFFIX for p in TORCH_PATHS))
HELP = ("Inference path: auto (bf16 where the CPU computes it natively, else fp32), fp32, bf16, int8 (dynamic "
        "int8 linears), onnx or onnx-int8 (ONNX Runtime); add +compile to a PyTorch path for torch.compile.")


@dataclass(frozen=True)
class RuntimeSpec:
    """One inference path: its name (one of PATHS) and whether the PyTorch towers run under torch.compile."""

    path: str
    compile: bool = False

    @property
    def name(self) -> str:
        """The path as `--runtime` spells it: "bf16", "int8+compile", "onnx"."""
        return self.path + (COMPILE_SUFFIX if self.compile else "")

    @property
    def backend(self) -> str:
        """"onnxruntime" for the ONNX paths, "torch" for the others."""
        return "onnxruntime" if self.path in ONNX_PATHS else "torch"

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form, as an index's meta table records it."""
        return {"name": self.name, "path": self.path, "compile": self.compile, "backend": self.backend}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RuntimeSpec:
        """Inverse of `to_dict` (only the name is read, so the recorded form may grow)."""
        name = data.get("name") if isinstance(data, dict) else None
        if not isinstance(name, str):
            raise InputError("runtime", f"recorded as {data!r}", "a JSON object with a 'name' such as 'bf16'")
        spec = parse_runtime(name)
        if spec is None:
            raise InputError("runtime", "recorded as 'auto'", "the resolved path that built the index")
        return spec


def parse_runtime(text: str) -> RuntimeSpec | None:
    """The spec `text` names, or None for "auto" (resolved per machine by `omnibind.runtime.resolve`)."""
    name = text.strip().lower()
    if name == AUTO:
        return None
    path, _, suffix = name.partition("+")
    if name not in CHOICES:
        if suffix and path in ONNX_PATHS:
            raise InputError("--runtime", f"got {text!r}: torch.compile applies to PyTorch paths only",
                             f"one of {', '.join(CHOICES)}")
        raise InputError("--runtime", f"got {text!r}", f"one of {', '.join(CHOICES)}")
    return RuntimeSpec(path, compile=bool(suffix))
