"""Study tables from what runs wrote, without training: training time from old and new summaries, and the
mean over seeds taken from unrounded values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from omnibind.experiments.results import collect, seed_table, train_seconds, write_results
from omnibind.experiments.study import load_study

TINY = Path(__file__).parents[2] / "configs" / "tiny_synthetic.yaml"


def old_summary(seconds: float, rate: float) -> dict:
    """A summary.json as written before the trainer timed training, evaluation and checkpoints apart."""
    return {"steps": 10, "examples_seen": 320, "seconds": seconds, "steps_this_process": 10,
            "parameters": {"trainable": 5, "frozen": 0}, "final": {"loss": 1.0, "pairs_per_s": rate}}


def test_train_seconds_of_new_and_old_summaries() -> None:
    assert train_seconds({**old_summary(99.0, 8.0), "train_seconds": 30.0}) == 30.0
    assert train_seconds(old_summary(45.0, 8.0)) == pytest.approx(320 / 8.0)  # from the last logged rate
    resumed = {**old_summary(45.0, 8.0), "steps_this_process": 5}
    assert train_seconds(resumed) == pytest.approx(160 / 8.0)
    assert train_seconds({**old_summary(45.0, 0.0)}) == 45.0  # no rate: the whole loop is all there is


def fake_study(folder: Path, top5: dict[tuple[str, int], float]) -> Path:
    """A study of finished runs (loss, seed) -> test top5, written as a trainer would, with no training."""
    base = yaml.safe_load(TINY.read_text())
    runs = []
    for (loss, seed), value in top5.items():
        name = f"{loss}_s{seed}"
        run = folder / "runs" / name
        cfg = {**base, "run_dir": str(run), "seed": seed, "loss": {**base["loss"], "kind": loss},
               "eval": {"splits": {"test": "unused"}}}
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(cfg))
        (run / "eval").mkdir(parents=True)
        (run / "summary.json").write_text(json.dumps({**old_summary(60.0, 8.0), "train_seconds": 42.0}))
        metrics = {"image_zeroshot/top5": value, "retrieval/image->text/median_rank": 10.0 + seed}
        (run / "eval" / "test.json").write_text(json.dumps({"metrics": metrics}))
        runs.append(f"{name}.yaml")
    study = {"title": "fake", "runs": runs, "columns": {"loss": "loss.kind", "seed": "seed"},
             "metrics": {"top5": "test/image_zeroshot/top5", "rank": "test/retrieval/image->text/median_rank"}}
    (folder / "study.yaml").write_text(yaml.safe_dump(study, sort_keys=False))
    return folder / "study.yaml"


def test_seed_means_come_from_unrounded_values(tmp_path: Path) -> None:
    # rounded to one decimal the sigmoid values read 25.9% and 30.6%, whose mean would show 28.3%
    path = fake_study(tmp_path, {("sigmoid", 0): 0.25945, ("sigmoid", 1): 0.30551, ("softmax", 0): 0.1})
    study = load_study(path)
    rows = collect(study)
    assert [r["train minutes"] for r in rows] == [pytest.approx(0.7)] * 3  # train_seconds, not seconds
    table = seed_table(study, rows)
    assert "| sigmoid | 0, 1 | 28.2% (25.9%–30.6%) | 10.5 (10–11) |" in table
    assert "softmax" not in table  # one seed: no mean to show
    written = write_results(study)["md"].read_text()
    assert "| train minutes |" in written and "## Mean over seeds" in written and "28.2%" in written


def test_no_seed_column_no_seed_table(tmp_path: Path) -> None:
    path = fake_study(tmp_path, {("sigmoid", 0): 0.2, ("sigmoid", 1): 0.3})
    spec = yaml.safe_load(path.read_text())
    spec["columns"] = {"loss": "loss.kind"}
    path.write_text(yaml.safe_dump(spec))
    study = load_study(path)
    assert seed_table(study, collect(study)) == ""
