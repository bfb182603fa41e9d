"""`omnibind train` from the command line, and bf16 autocast on CPU."""

from __future__ import annotations

import math
from pathlib import Path

from typer.testing import CliRunner

from omnibind.cli import app
from omnibind.train.config import load_train_config
from omnibind.train.trainer import Trainer

CONFIG = Path(__file__).parents[2] / "configs" / "tiny_synthetic.yaml"


def test_train_command_runs_and_resumes(tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["train", str(CONFIG), f"run_dir={tmp_path}", "train.steps=4", "train.ckpt_every=2"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "step 4" in result.output and (tmp_path / "checkpoints" / "step-00000004").is_dir()
    result = runner.invoke(app, [*args[:3], "train.steps=6", "--resume"])
    assert result.exit_code == 0, result.output
    assert "resumed from" in (tmp_path / "train.log").read_text()


def test_bad_config_is_one_clear_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["train", str(CONFIG), "optim.lr=fast"])
    assert result.exit_code == 2 and "optim.lr" in result.output and "Traceback" not in result.output


def test_bf16_autocast_trains_on_cpu(tmp_path: Path) -> None:
    cfg = load_train_config(CONFIG, [f"run_dir={tmp_path}", "train.steps=3", "train.precision=bf16"])
    metrics = Trainer(cfg, show_progress=False).run()
    assert math.isfinite(metrics["loss"])
