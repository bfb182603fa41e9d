"""Smoke runs of the GPU benchmarks at tiny settings (they fall back to the CPU here): every row is
measured and positive, FLOPs are counted, omnibind's embeddings agree with transformers' (a gap is a failing
exit), and the open_clip paths run where open_clip imports (it is optional: skipped otherwise)."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest
import torch
from rich.console import Console

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(autouse=True)
def benchmarks_on_path(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)
    for name in ("gpu_train", "gpu_infer", "gpu_common", "bench_results"):
        sys.modules.pop(name, None)


def quiet() -> Console:
    """A console that prints nowhere (the table is not what these tests check)."""
    return Console(file=io.StringIO())


def import_open_clip() -> None:
    """Import open_clip or skip. open_clip imports torchvision; where the only torchvision at hand is a CUDA
    build beside a CPU torch, its C ops do not load and its import stops at the fake kernels it registers for
    nms and qnms. open_clip needs only torchvision's Python parts, so declare those two schemas and retry."""
    try:
        import open_clip
    except RuntimeError as error:
        if "torchvision::" not in str(error):
            raise
        library = torch.library.Library("torchvision", "DEF")  # kept alive for the process, as torchvision's own
        for op in ("nms", "qnms"):
            library.define(f"{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        import_open_clip.library = library  # type: ignore[attr-defined]
        for name in [m for m in sys.modules if m.split(".")[0] in ("torchvision", "open_clip", "timm")]:
            del sys.modules[name]
        import open_clip  # noqa: F401
    except ImportError:
        pytest.skip("open_clip is not installed (optional)")


@pytest.mark.slow
def test_gpu_train_smoke(tmp_path: Path) -> None:
    import gpu_train

    out = tmp_path / "train.json"
    result = gpu_train.main(["--depth", "1", "--batch", "2", "--steps", "1", "--warmup", "0", "--precision", "fp32",
                             "--modes", "eager", "--libs", "omnibind,omnibind-trainer", "--json", str(out)], quiet())
    rows = {r["lib"]: r for r in result["rows"]}
    assert set(rows) == {"omnibind", "omnibind-trainer"}
    for row in rows.values():
        assert row["pairs_per_s"] > 0 and row["mode"] == "eager"
        assert row["flops_per_pair"] > 1e9 and row["mfu"] > 0  # one B/16-wide block per tower: ~13 GFLOP per pair
    # the trainer's step does the same arithmetic (clipping and the schedule add no matmuls)
    assert rows["omnibind-trainer"]["flops_per_pair"] == pytest.approx(rows["omnibind"]["flops_per_pair"], rel=1e-3)
    saved = json.loads(out.read_text())
    assert saved["rows"] == result["rows"] and saved["machine"]["cpu"] and saved["machine"]["cores"] >= 1


@pytest.mark.slow
def test_gpu_train_open_clip_smoke(tmp_path: Path) -> None:
    import_open_clip()
    import gpu_train

    result = gpu_train.main(["--depth", "1", "--batch", "2", "--steps", "1", "--warmup", "0", "--precision", "fp32",
                             "--modes", "eager", "--libs", "omnibind,open_clip", "--json", str(tmp_path / "t.json")],
                            quiet())
    rows = {r["lib"]: r for r in result["rows"]}
    assert rows["open_clip"]["pairs_per_s"] > 0 and rows["open_clip"]["flops_per_pair"] > 1e9
    # the same shapes and depth: FLOPs per pair within 10% of omnibind's (open_clip's text tower has no MAP head)
    assert rows["open_clip"]["flops_per_pair"] == pytest.approx(rows["omnibind"]["flops_per_pair"], rel=0.1)


@pytest.mark.slow
def test_gpu_infer_smoke(tmp_path: Path) -> None:
    import gpu_infer

    result = gpu_infer.main(["--depth", "1", "--batch", "2", "--iters", "1", "--warmup", "0", "--libs",
                             "omnibind,transformers", "--json", str(tmp_path / "infer.json")], quiet())
    assert result["parity"]["passed"] and max(result["gap"].values()) < 1e-4
    assert result["config"]["precision"] == "fp32"
    assert {(r["lib"], r["task"]) for r in result["rows"]} == {(lib, task) for lib in ("omnibind", "transformers")
                                                               for task in ("image", "text")}
    assert all(r["items_per_s"] > 0 for r in result["rows"])


@pytest.mark.slow
def test_gpu_infer_parity_gap_is_a_failing_exit(tmp_path: Path) -> None:
    import gpu_infer

    with pytest.raises(SystemExit, match="parity check failed"):
        gpu_infer.main(["--depth", "1", "--batch", "2", "--iters", "1", "--warmup", "0", "--libs",
                        "omnibind,transformers", "--tol", "0", "--json", str(tmp_path / "x.json")], quiet())


@pytest.mark.slow
def test_gpu_infer_open_clip_smoke(tmp_path: Path) -> None:
    import_open_clip()
    import gpu_infer

    result = gpu_infer.main(["--depth", "1", "--batch", "2", "--iters", "1", "--warmup", "0",
                             "--json", str(tmp_path / "infer.json")], quiet())
    libs = {r["lib"] for r in result["rows"]}
    assert libs == {"omnibind", "transformers", "open_clip"} and all(r["items_per_s"] > 0 for r in result["rows"])
