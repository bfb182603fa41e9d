"""Raw benchmark results as JSON under benchmarks/results/, each with the machine it ran on.

The project's machines differ (an Intel Xeon and an AMD EPYC so far, each with 2 cores shared with other
work), so a ratio between two libraries holds within one run on one machine; the JSON keeps which."""

from __future__ import annotations

import datetime
import json
import os
import platform
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from omnibind.hardware import cpu_model
from omnibind.runtime import matmul_features

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, Any]:
    """The CPU model and its bf16/int8 matrix-multiply flags (AVX-512 BF16, VNNI, AMX), the cores this process may
    use, the GPU (or None), the load and the software versions."""
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = None
    return {"cpu": cpu_model(), "cpu_matmul_features": matmul_features(), "cores": len(os.sched_getaffinity(0)),
            "gpu": gpu, "load_1min": load,
            "os": platform.platform(), "python": platform.python_version(), "torch": torch.__version__}


def default_path(script: str) -> Path:
    """benchmarks/results/<script>-<UTC time>-<cpu or gpu>.json."""
    info = machine()
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    slug = re.sub(r"[^a-z0-9]+", "-", (info["gpu"] or info["cpu"]).lower()).strip("-")[:40]
    return RESULTS / f"{script}-{stamp}-{slug}.json"


def save(script: str, results: dict[str, Any], path: Path | None = None) -> Path:
    """Add the script, the machine and the date to `results` (in place) and write them as JSON to `path`, or to a
    new file under benchmarks/results/; returns the path."""
    path = path or default_path(script)
    path.parent.mkdir(parents=True, exist_ok=True)
    results.update(script=script, machine=machine(),
                   date=datetime.datetime.now().astimezone().isoformat(timespec="seconds"))
    path.write_text(json.dumps(results, indent=2) + "\n")
    return path


def time_interleaved(calls: dict[str, Callable[[], object]], iters: int, warmup: int) -> dict[str, list[float]]:
    """Seconds of every timed call per name; the calls alternate, and their order flips every repeat."""
    names = list(calls)
    for _ in range(warmup):
        for name in names:
            calls[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for i in range(iters):
        for name in names if i % 2 == 0 else names[::-1]:
            start = time.perf_counter()
            calls[name]()
            times[name].append(time.perf_counter() - start)
    return times
