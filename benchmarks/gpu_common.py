"""Helpers shared by the GPU benchmarks: timing with device sync, peak bf16 matmul, FLOP counting."""

from __future__ import annotations

import datetime
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

IMAGE_SIZE, PATCH, TEXT_LEN, VOCAB = 224, 16, 64, 32000


def sync(device: torch.device) -> None:
    """Wait for queued device work, so wall-clock timings are real."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_seconds(run: Callable[[], Any], device: torch.device, iters: int, warmup: int) -> float:
    """Median wall time of `run` over `iters` timed calls after `warmup` untimed ones."""
    for _ in range(warmup):
        run()
    sync(device)
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        run()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def peak_matmul_tflops(device: torch.device, dtype: torch.dtype, size: int = 8192, iters: int = 20) -> float:
    """Measured dense matmul throughput (the MFU denominator), TFLOP/s."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    seconds = median_seconds(lambda: a @ b, device, iters, warmup=3)
    return 2 * size**3 / seconds / 1e12


def count_flops(run: Callable[[], Any]) -> int:
    """FLOPs of one call (forward and backward), counted by torch's FlopCounterMode (matmuls, convs, SDPA)."""
    with FlopCounterMode(display=False) as counter:
        run()
    return counter.get_total_flops()


def random_batch(batch: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixels in [-1, 1] and token ids of the SigLIP B/16 shapes (the same inputs for every library)."""
    g = torch.Generator().manual_seed(0)
    images = (torch.rand(batch, 3, IMAGE_SIZE, IMAGE_SIZE, generator=g) * 2 - 1).to(device)
    ids = torch.randint(0, VOCAB, (batch, TEXT_LEN), generator=g).to(device)
    return images, ids


def environment(device: torch.device) -> dict[str, Any]:
    """Versions, device and date for the header line."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "CPU"
    env = {"torch": torch.__version__, "device": name, "python": platform.python_version(),
           "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds")}
    for lib in ("transformers", "open_clip"):
        try:
            env[lib] = __import__(lib).__version__
        except ImportError:
            env[lib] = "absent"
    return env


def free(device: torch.device) -> None:
    """Release cached device memory between measurements."""
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak_gib(device: torch.device) -> float:
    """Peak allocated device memory since the last reset, GiB (0 on CPU)."""
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else 0.0
