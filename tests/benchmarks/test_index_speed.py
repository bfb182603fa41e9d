"""Smoke test of benchmarks/index_speed.py's quality part (`--quality-only`): on a tiny starter build and a tiny
saved model standing in for the demo model, each path gets R@1 / zero-shot figures and the cosine of its
embeddings of the test split's pictures, texts and sounds to fp32's, written to the JSON file too. (The timed
part runs `omnibind index` on 2,000 pictures per path; it is not run here.)"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
from rich.console import Console

pytest.importorskip("transformers")


@pytest.mark.slow
@pytest.mark.usefixtures("restore_threads")
def test_quality_only_gives_metrics_and_cosines_to_fp32_per_path(
        tmp_path: Path, tiny_checkpoint: Path, load_script: Callable[[str], ModuleType]) -> None:
    from omnibind.starter.build import StarterOptions, build_starter

    build_starter(StarterOptions(tmp_path / "starter", seed=0, limit=2), show_progress=False)
    bench = load_script("index_speed")
    out = tmp_path / "results.json"
    argv = ["--quality-only", "--data", str(tmp_path / "starter"), "--demo-model", str(tiny_checkpoint),
            "--paths", "int8", "--embed-paths", "bf16", "--threads", "1", "--json", str(out)]
    results = bench.main(argv, console=Console(file=io.StringIO(), width=250))

    assert results["rows"] == []  # nothing timed
    assert set(results["demo_quality"]) == set(results["demo_cosine"]) == {"fp32", "bf16", "int8"}
    assert all(key.endswith(("/R@1", "zeroshot/top1")) for key in results["demo_quality"]["int8"])
    cosines = results["demo_cosine"]
    assert set(cosines["fp32"]) == {"image", "text", "audio"}
    assert all(c["min"] > 1 - 1e-5 for c in cosines["fp32"].values())  # fp32 against itself
    for path in ("bf16", "int8"):
        assert set(cosines[path]) == {"image", "text", "audio"}
        assert all(0.9 < c["min"] <= c["mean"] < 1 + 1e-5 for c in cosines[path].values()), cosines[path]
    assert json.loads(out.read_text())["demo_cosine"] == cosines
