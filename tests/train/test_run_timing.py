"""summary.json keeps training, evaluation and checkpoint time apart, and pairs/s counts training time only."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from omnibind.train.config import load_train_config
from omnibind.train.trainer import Trainer

CONFIG = Path(__file__).parents[2] / "configs" / "tiny_synthetic.yaml"
PAUSE = 0.4  # seconds each checkpoint and each evaluation is made to take


def test_summary_splits_train_eval_and_checkpoint_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = load_train_config(CONFIG, [f"run_dir={tmp_path}", "train.steps=4", "train.log_every=2",
                                     "train.ckpt_every=2"])
    trainer = Trainer(cfg, show_progress=False)
    monkeypatch.setattr(trainer, "save", lambda: time.sleep(PAUSE))  # 2 checkpoints (steps 2 and 4)
    monkeypatch.setattr(trainer, "_eval_due", lambda total: trainer.step % 2 == 0)  # 2 evaluations
    monkeypatch.setattr(trainer, "evaluate", lambda metrics_log: time.sleep(PAUSE))
    trainer.run()
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["checkpoint_seconds"] == pytest.approx(2 * PAUSE, abs=0.1)
    assert summary["eval_seconds"] == pytest.approx(2 * PAUSE, abs=0.1)
    parts = summary["train_seconds"] + summary["eval_seconds"] + summary["checkpoint_seconds"]
    assert summary["seconds"] == pytest.approx(parts, rel=1e-9) and summary["train_seconds"] > 0
    # the rate of the last log (step 4) is over the training steps alone, not the 1.6 s of pauses
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    rate = [r for r in records if "pairs_per_s" in r][-1]["pairs_per_s"]
    assert rate > 4 * cfg.data.batch_size / (summary["train_seconds"] + 0.05)
