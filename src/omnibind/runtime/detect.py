"""What this CPU computes natively, read at run time: bfloat16 matrix multiplies (AVX-512 BF16 or AMX) make
the bf16 path several times faster than fp32; without them PyTorch emulates bf16 and it is slower."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import torch

BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
INT8_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8"})


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The feature flags of the first CPU in /proc/cpuinfo (empty where there is none: macOS, Windows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def matmul_features() -> list[str]:
    """The CPU's flags that speed up bf16 or int8 matrix multiplies (AVX-512 BF16, VNNI, AMX), for the record
    beside a benchmark figure: the same path's speed differs several-fold between CPUs with and without AMX."""
    return sorted((BF16_FLAGS | INT8_FLAGS) & cpu_flags())


def bf16_supported() -> bool:
    """True when bf16 matmuls run natively here: an AVX-512 BF16 or AMX flag and oneDNN's own bf16 check."""
    if not BF16_FLAGS & cpu_flags():
        return False
    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    return bool(check()) if check is not None else True


def int8_accelerated() -> bool:
    """True when int8 dot products run natively here (VNNI or AMX); reported beside benchmark figures."""
    return bool(INT8_FLAGS & cpu_flags())


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask, which containers and taskset narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1
