"""A study run trained again on the same kind of machine repeats itself exactly: experiments/loss_batch/
reproduced/sigmoid_b128 (trained later, with the code that trained the later runs of the study) has the
evaluation figures and logged losses of the first run, bit for bit."""

from __future__ import annotations

import json
from pathlib import Path

STUDY = Path(__file__).resolve().parents[2] / "experiments" / "loss_batch"
FIRST, AGAIN = STUDY / "runs" / "sigmoid_b128", STUDY / "reproduced" / "sigmoid_b128"


def losses(run: Path) -> dict[int, float]:
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in records if "loss" in r}


def test_the_rerun_equals_the_first_run() -> None:
    splits = sorted(p.name for p in (AGAIN / "eval").glob("*.json"))
    assert splits == ["test.json", "test_unseen_style.json"]
    for name in splits:
        again = json.loads((AGAIN / "eval" / name).read_text())["metrics"]
        assert again == json.loads((FIRST / "eval" / name).read_text())["metrics"]
    assert len(losses(AGAIN)) == 40 and losses(AGAIN) == losses(FIRST)
