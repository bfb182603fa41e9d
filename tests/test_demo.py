"""A miniature `make demo`: a small starter build, tokenizer, a few training steps, evaluation on the
test and unseen splits, the report and the printed table — the main job's whole path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from omnibind.starter import packages

ROOT = Path(__file__).resolve().parents[1]
MISSING = packages.missing_debian() + packages.missing_python()


@pytest.mark.slow
@pytest.mark.skipif(bool(MISSING), reason=f"starter sources missing: {MISSING} (make data-deps)")
def test_miniature_demo(tmp_path: Path) -> None:
    run = tmp_path / "run"
    cmd = [sys.executable, str(ROOT / "scripts" / "demo.py"), "--data", str(tmp_path / "starter"), "--limit", "4",
           f"run_dir={run}", "train.steps=3", "train.log_every=1", "data.batch_size=8", "data.num_workers=0",
           "data.shuffle_buffer=16", "eval.limit=40"]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert "evaluation (chance beside each figure)" in result.stdout
    splits = {p.stem for p in (run / "eval").glob("*.json")}
    assert splits == {"test", "test_unseen_style", "test_unseen_soundfont", "test_unseen_voice"}
    unseen_style = json.loads((run / "eval" / "test_unseen_style.json").read_text())["metrics"]
    assert "image_zeroshot/top1" in unseen_style and "retrieval/text->image/R@1" in unseen_style
    assert (run / "report.html").is_file() and (run / "checkpoints" / "step-00000003").is_dir()
