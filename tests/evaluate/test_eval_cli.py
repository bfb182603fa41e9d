"""`omnibind eval` and `omnibind report` on a tiny checkpoint, and evaluation inside a training run."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from omnibind.cli import app
from omnibind.runlog import read_metrics
from omnibind.train.config import load_train_config
from omnibind.train.trainer import Trainer

CONFIG = Path(__file__).parents[2] / "configs" / "tiny_synthetic.yaml"


def manifest(tmp_path: Path, media_files: dict[str, Path]) -> Path:
    lines = [
        {"key": "photo", "image": str(media_files["photo"]), "text": "an astronaut", "meta": {"label": "astronaut"}},
        {"key": "circle", "image": str(media_files["drawing"]), "text": "a red circle", "meta": {"label": "circle"}},
        {"key": "tone", "audio": str(media_files["tone"]), "text": "a pure tone", "meta": {"label": "tone"}},
        {"key": "chirp", "audio": str(media_files["chirp"]), "text": "a chirp", "meta": {"label": "chirp"}},
    ]
    path = tmp_path / "test.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    return path


def test_eval_then_report(tmp_path: Path, tiny_checkpoint: Path, media_files) -> None:
    runner = CliRunner()
    data = manifest(tmp_path, media_files)
    result = runner.invoke(app, ["eval", str(tiny_checkpoint), "--data", f"test={data}", "--out", str(tmp_path / "ev"),
                                 "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "image_zeroshot" in result.output and "text->audio" in result.output
    result = runner.invoke(app, ["report", str(tmp_path / "ev")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "ev" / "report.html").is_file()


def test_eval_with_bad_data_spec(tmp_path: Path, tiny_checkpoint: Path) -> None:
    result = CliRunner().invoke(app, ["eval", str(tiny_checkpoint), "--data", f"x={tmp_path}/none.tar"])
    assert result.exit_code == 2 and "none.tar" in result.output


def test_trainer_evaluates_during_and_after_training(tmp_path: Path, spiece_model: Path, media_files) -> None:
    data = manifest(tmp_path, media_files)
    cfg = load_train_config(CONFIG, [f"run_dir={tmp_path / 'run'}", "train.steps=4", f"model.tokenizer={spiece_model}",
                                     f"eval.splits={{test: {data}}}", "eval.every=2"])
    Trainer(cfg, show_progress=False).run()
    evals = [r for r in read_metrics(tmp_path / "run") if any(k.startswith("eval/") for k in r)]
    assert [r["step"] for r in evals] == [2, 4]
    assert "eval/test/image_zeroshot/top1" in evals[-1]
    assert (tmp_path / "run" / "eval" / "test.json").is_file()
