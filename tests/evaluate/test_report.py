"""evaluate_splits writes eval/<split>.json with media; the report turns a run folder into md + html."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import tiny_model
from omnibind.errors import InputError
from omnibind.evaluate.examples import EvalExample
from omnibind.evaluate.report import write_report
from omnibind.evaluate.run import evaluate_splits
from omnibind.runlog import MetricsLog


def examples(media_files: dict[str, Path]) -> list[EvalExample]:
    return [
        EvalExample("photo", {"image": media_files["photo"].read_bytes(), "text": "an astronaut"}, "astronaut"),
        EvalExample("circle", {"image": media_files["drawing"], "text": "a red circle"}, "circle"),
        EvalExample("tone", {"audio": media_files["tone"].read_bytes(), "text": "a pure tone"}, "tone"),
        EvalExample("chirp", {"audio": media_files["chirp"], "text": "a rising chirp"}, "chirp"),
    ]


def test_evaluate_writes_split_json_with_media(tmp_path: Path, spiece_model: Path, media_files) -> None:
    results = evaluate_splits(tiny_model(spiece_model), {"test": examples(media_files)}, tmp_path)
    metrics = results["test"]
    assert metrics["image_zeroshot/top1_chance"] == 0.5 and 0 <= metrics["image_zeroshot/top1"] <= 1
    assert metrics["retrieval/text->image/items"] == 2 and metrics["retrieval/audio->text/items"] == 4
    saved = json.loads((tmp_path / "eval" / "test.json").read_text())
    assert saved["metrics"] == metrics and saved["examples"]
    for example in saved["examples"]:
        for item in [example["query"], *example["results"]]:
            assert "text" in item or (tmp_path / "eval" / item["media"]).is_file()


def test_report_has_table_curves_and_examples(tmp_path: Path, spiece_model: Path, media_files) -> None:
    log = MetricsLog(tmp_path, tensorboard=False)
    for step in range(1, 6):
        log.write(step, {"loss": 10.0 / step, "loss/image-text": 5.0 / step, "lr": 1e-3, "t": 10.0, "b": -10.0,
                         "pairs_per_s": 100.0})
    metrics = evaluate_splits(tiny_model(spiece_model), {"test": examples(media_files)}, tmp_path)["test"]
    md, page = write_report(tmp_path)
    text, markup = md.read_text(), page.read_text()
    # every figure on the row of its own metric, beside its own chance (two classes: 50%)
    for task, metric in (("image_zeroshot", "top1"), ("audio_zeroshot", "top1"),
                         ("retrieval/text->image", "R@1"), ("retrieval/audio->text", "R@1")):
        value, chance = metrics[f"{task}/{metric}"], metrics[f"{task}/{metric}_chance"]
        row = f"| test | {task} | {metric} | {100 * value:.1f}% | {100 * chance:.1f}% |"
        assert row in text, (row, [line for line in text.splitlines() if line.startswith("| test")])
    assert metrics["image_zeroshot/top1_chance"] == 0.5
    rank = metrics["retrieval/image->text/median_rank"]
    assert f"| test | retrieval/image->text | median_rank | {rank:.1f} |" in text
    for name in ("loss", "learning_rate", "temperature_bias", "throughput"):
        assert (tmp_path / "report" / f"{name}.png").is_file() and f"report/{name}.png" in markup
    assert "<audio controls" in markup and 'src="eval/media/' in markup


def test_report_of_an_empty_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="neither metrics"):
        write_report(tmp_path)
    with pytest.raises(InputError, match="run folder not found"):
        write_report(tmp_path / "absent")
