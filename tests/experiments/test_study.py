"""Studies: runs train in their own processes (one, or two under torchrun), finished runs are skipped,
and the table and plots come from what the runs wrote."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest
import yaml

from omnibind.errors import InputError
from omnibind.experiments.results import collect, write_results
from omnibind.experiments.study import launch_command, load_study, run_study

TINY = Path(__file__).parents[2] / "configs" / "tiny_synthetic.yaml"


def write_study(folder: Path, runs: dict[str, dict], **extra) -> Path:
    """A study of tiny synthetic runs: name -> {overrides..., nproc}."""
    base = yaml.safe_load(TINY.read_text())
    entries = []
    for name, spec in runs.items():
        cfg = json.loads(json.dumps(base))
        cfg["run_dir"] = str(folder / "runs" / name)
        cfg["train"].update(steps=4, log_every=2, ckpt_every=4)
        cfg["data"]["batch_size"] = spec.get("batch", 16)
        cfg["loss"]["kind"] = spec.get("loss", "sigmoid")
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(cfg))
        entries.append({"config": f"{name}.yaml", "nproc": spec.get("nproc", 1), "note": spec.get("note", "")})
    study = {"title": "tiny", "runs": entries, "columns": {"loss": "loss.kind", "batch": "data.batch_size"},
             "metrics": {"final loss": "missing/metric"},
             "plot": {"metrics": ["final loss"], "x": "batch", "series": "loss", "logx": True, "curves": True}}
    study.update(extra)
    path = folder / "study.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


@pytest.mark.slow
def test_a_study_trains_its_runs_and_tabulates_them(tmp_path: Path) -> None:
    path = write_study(tmp_path, {"sig16": {}, "soft32": {"loss": "softmax", "batch": 32, "note": "the baseline"},
                                  "sig16_ddp": {"nproc": 2}})
    study = load_study(path)
    assert run_study(study) == ["sig16", "soft32", "sig16_ddp"]
    assert run_study(study) == []  # finished runs are kept
    assert run_study(study, only=["sig16"], force=True) == ["sig16"]
    records = [json.loads(line) for line in (tmp_path / "runs" / "sig16" / "metrics.jsonl").open()]
    assert [r["step"] for r in records] == [2, 4]  # the forced run's log alone, nothing appended to the old one
    rows = collect(study)
    assert [r["run"] for r in rows] == ["sig16", "soft32", "sig16_ddp"]
    assert [r["batch"] for r in rows] == [16, 32, 16] and rows[1]["loss"] == "softmax"
    assert all(r["steps"] == 4 and r["trainable params"] > 0 for r in rows)
    assert rows[0]["final loss"] is None  # a metric no run wrote is shown as missing, not invented
    summary = json.loads((tmp_path / "runs" / "sig16_ddp" / "summary.json").read_text())
    assert summary["hardware"].startswith("2 process(es)") and summary["examples_seen"] == 64
    written = write_results(study)
    assert set(written) == {"md", "csv", "plot", "curves"} and written["plot"].stat().st_size > 0
    table = written["md"].read_text()
    assert "| soft32 | the baseline | softmax | 32 | 4 | 128 |" in table and "| sig16 |  | sigmoid |" in table
    assert len(list(csv.DictReader(written["csv"].open()))) == 3


def test_launch_commands() -> None:
    assert launch_command(Path("a.yaml"), 1) == [sys.executable, "-m", "omnibind.cli", "train", "a.yaml"]
    assert launch_command(Path("a.yaml"), 4)[1:5] == ["-m", "torch.distributed.run", "--standalone",
                                                      "--nproc_per_node=4"]


def test_bad_studies_name_what_is_wrong(tmp_path: Path) -> None:
    path = write_study(tmp_path, {"a": {}})
    spec = yaml.safe_load(path.read_text())
    for change, message in ((dict(runs=[]), "lists no runs"),
                            (dict(runs=spec["runs"] * 2), "listed twice"),
                            (dict(plot={"metrics": ["nope"]}), "not a metric label"),
                            (dict(plot={"x": "nope"}), "not a column label"),
                            (dict(runs=[{"config": "missing.yaml"}]), "missing.yaml")):
        path.write_text(yaml.safe_dump({**spec, **change}))
        with pytest.raises(InputError, match=message):
            load_study(path)
