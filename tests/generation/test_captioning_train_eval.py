"""A captioning run evaluates itself while it trains: its towers, projections and decoder, seen as the Generator its
checkpoint loads as, caption each eval split with the run's tasks; metrics land in eval/<split>.json and
metrics.jsonl beside the embedding evaluators'. `omnibind eval` on the final checkpoint (same tasks, training
captions and, for a run mixed with a contrastive loss, the same checkpoint as the baseline model) gives the same
captioning metrics, exactly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import omnibind
from omnibind.cli import app
from omnibind.evaluate.captioning import FREQUENT, GENERATED, NEAREST
from omnibind.generation import Generator
from omnibind.train.config import load_train_config
from omnibind.train.metrics import read_metrics
from omnibind.train.trainer import Trainer

ROOT = Path(__file__).parents[2]
TASKS = ("tasks: [{prompt: 'what instrument is this?', media: [audio], keys: ['note-*']}, "
         "{prompt: caption en, media: [image]}]")
DECODER = "decoder: {width: 32, depth: 1, heads: 2, head_dim: 16, mlp_dim: 64}"


def manifest(path: Path, media: dict[str, Path], rows: list[tuple[str, str, str, str]]) -> Path:
    path.write_text("".join(json.dumps({"key": k, modality: str(media[f]), "text": t}) + "\n"
                            for k, modality, f, t in rows))
    return path


@pytest.fixture
def splits(tmp_path: Path, media_files: dict[str, Path]) -> dict[str, Path]:
    train = manifest(tmp_path / "train.jsonl", media_files, [
        ("t1", "image", "photo", "an astronaut"), ("t2", "image", "drawing", "a red circle"),
        ("t3", "image", "photo", "a red circle"), ("note-1", "audio", "tone", "a tone"),
        ("note-2", "audio", "chirp", "a chirp"), ("note-3", "audio", "chirp", "a chirp"),
        ("t4", "image", "drawing", "a circle"), ("note-4", "audio", "tone", "a high tone")])
    test = manifest(tmp_path / "test.jsonl", media_files, [
        ("photo", "image", "photo", "an astronaut"), ("circle", "image", "drawing", "a red circle"),
        ("circle-2", "image", "drawing", "a circle"), ("note-tone", "audio", "tone", "a tone"),
        ("note-chirp", "audio", "chirp", "a chirp")])
    return {"train": train, "test": test}


def run(run_dir: Path, spiece: Path, splits: dict[str, Path], contrastive: bool) -> Trainer:
    options = f"loss.options={{{DECODER}, {TASKS}, contrastive: {'sigmoid' if contrastive else 'null'}}}"
    cfg = load_train_config(ROOT / "configs" / "tiny_synthetic.yaml", [
        f"run_dir={run_dir}", "loss.kind=captioning", options, "loss.pairs=[[image, text], [audio, text]]",
        "data.kind=cached", f"data.shards={splits['train']}", "data.batch_size=4", "data.num_workers=0",
        f"model.tokenizer={spiece}", "train.steps=4", "train.ckpt_every=4", "train.log_every=1",
        "optim.warmup_steps=1", "optim.lr=1e-2", f"eval.splits={{test: {splits['test']}}}", "eval.every=2"])
    trainer = Trainer(cfg, show_progress=False)
    trainer.run()
    return trainer


def captioning(metrics: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in metrics.items() if k.startswith("captioning/")}


def test_a_mixed_run_captions_while_training_as_omnibind_eval_does(tmp_path: Path, spiece_model: Path,
                                                                   splits: dict[str, Path]) -> None:
    trainer = run(tmp_path / "run", spiece_model, splits, contrastive=True)
    saved = json.loads((tmp_path / "run" / "eval" / "test.json").read_text())
    metrics = saved["metrics"]
    for task in ("image.caption_en", "audio.what_instrument_is_this"):
        for system in (GENERATED, NEAREST, FREQUENT):
            assert f"captioning/{task}/{system}/CIDEr-D" in metrics, (task, system)
    assert metrics["captioning/image.caption_en/items"] == 2 and "retrieval/image->text/R@1" in metrics
    assert saved["captions"] and all(c["texts"][GENERATED] is not None for c in saved["captions"])
    logged = [r for r in read_metrics(tmp_path / "run") if "eval/test/captioning/image.caption_en/items" in r]
    assert [r["step"] for r in logged] == [2, 4]
    assert captioning({k.removeprefix("eval/test/"): v for k, v in logged[-1].items()}) == captioning(metrics)

    final = trainer.final_model_dir()
    assert isinstance(omnibind.load(final), Generator)
    out = tmp_path / "ev"
    result = CliRunner().invoke(app, ["eval", str(final), "--data", f"test={splits['test']}", "--out", str(out),
                                      "--tasks", str(tmp_path / "run" / "config.yaml"), "--train-data",
                                      str(splits["train"]), "--baseline-model", str(final), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    again = json.loads((out / "eval" / "test.json").read_text())
    assert captioning(again["metrics"]) == captioning(metrics)  # exact: same weights, same items, greedy
    assert [c["texts"] for c in again["captions"]] == [c["texts"] for c in saved["captions"]]


def test_a_captioning_only_run_skips_the_nearest_caption_baseline(tmp_path: Path, spiece_model: Path,
                                                                  splits: dict[str, Path]) -> None:
    run(tmp_path / "run", spiece_model, splits, contrastive=False)
    metrics = json.loads((tmp_path / "run" / "eval" / "test.json").read_text())["metrics"]
    systems = {k.split("/")[2] for k in metrics if k.startswith("captioning/") and not k.endswith("/items")}
    assert systems == {GENERATED, FREQUENT}
    assert "nearest_caption baseline skipped" in (tmp_path / "run" / "train.log").read_text()
