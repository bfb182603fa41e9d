"""Smoke test of benchmarks/cpu_inference.py: one tiny run (depth 1, batch 2, one repeat) over the fp32 and int8
paths gives a row per task and variant (transformers fp32 and int8 as peers), passes the parity check, measures
each path's cosine to fp32, and writes the same results as JSON. (The ONNX paths load through the same code; their
export takes a minute at these shapes, and tests/runtime/test_onnx.py covers them.)"""

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
def test_tiny_run_reports_every_path_beside_its_peers(tmp_path: Path,
                                                      load_script: Callable[[str], ModuleType]) -> None:
    bench = load_script("cpu_inference")
    out = tmp_path / "results.json"
    console = Console(file=io.StringIO(), width=250)
    argv = ["--paths", "int8", "--depth", "1", "--batch", "2", "--iters", "1", "--warmup", "0",
            "--threads", "1", "--json", str(out)]
    results = bench.main(argv, console=console)

    assert results["parity"]["passed"]
    assert all(diff < 1e-4 for diff in results["parity"]["max_abs_diff"].values())
    variants = {"transformers fp32", "transformers int8", "omnibind fp32", "omnibind int8"}
    rows = {(row["task"], row["variant"]): row for row in results["rows"]}
    assert set(rows) == {(task, v) for task in ("image", "text") for v in variants}
    for row in rows.values():
        assert row["batch"] == 2 and row["items_per_s"] > 0 and len(row["seconds_each"]) == 1
        assert row["setup_seconds"] > 0
        assert row["speedup_vs_transformers_fp32"] > 0
        assert 0.9 < row["cosine_to_fp32_min"] <= row["cosine_to_fp32_mean"] < 1 + 1e-5
    assert rows[("image", "omnibind fp32")]["cosine_to_fp32_min"] > 1 - 1e-6
    assert rows[("text", "omnibind int8")]["peer"] == "transformers int8"
    assert rows[("text", "omnibind int8")]["speedup_vs_peer"] > 0
    assert rows[("text", "transformers int8")]["speedup_vs_peer"] is None
    assert json.loads(out.read_text()) == results
    printed = console.file.getvalue()
    assert "vs same precision" in printed and "parity" in printed and "1 threads" in printed


def test_unknown_paths_are_refused_by_the_argument_parser(capsys: pytest.CaptureFixture[str],
                                                          load_script: Callable[[str], ModuleType]) -> None:
    bench = load_script("cpu_inference")
    with pytest.raises(SystemExit):
        bench.parse_args(["--paths", "fp32,fp8"])
    assert "--runtime: got 'fp8'" in capsys.readouterr().err
