"""Faster CPU inference paths chosen by one option (`--runtime`): bf16 where the CPU computes it natively (the
default there), fp32, int8 dynamic quantization, ONNX Runtime (fp32 or int8), torch.compile on top of the
PyTorch ones; plus the thread count and the decode prefetch that keep the model busy."""

from __future__ import annotations

from omnibind.runtime.apply import Runtime, apply_runtime, resolve, runtime_of
from omnibind.runtime.detect import bf16_supported, cpu_flags, int8_accelerated, matmul_features, usable_cores
from omnibind.runtime.prefetch import prefetch
from omnibind.runtime.spec import CHOICES, HELP, PATHS, RuntimeSpec, parse_runtime
from omnibind.runtime.threads import batch_threads

__all__ = ["CHOICES", "HELP", "PATHS", "Runtime", "RuntimeSpec", "apply_runtime", "batch_threads",
           "bf16_supported", "cpu_flags", "int8_accelerated", "matmul_features", "parse_runtime", "prefetch", "resolve",
           "runtime_of", "usable_cores"]
