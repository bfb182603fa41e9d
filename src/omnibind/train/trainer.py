"""The training loop: build, optionally resume, step, log, checkpoint. Launch with torchrun for several
processes (`torchrun --nproc_per_node=N -m omnibind.cli train CONFIG`); one process works without it."""

from __future__ import annotations

import contextlib
import json
import logging
import random
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from omnibind import checkpoint
from omnibind.progress import progress_bar
from omnibind.train import distributed, state
from omnibind.train.build import build_data, build_model, make_objective
from omnibind.train.caption_eval import CaptionEvalSetup
from omnibind.train.config import TrainConfig
from omnibind.train.metrics import MetricsLog
from omnibind.train.optim import lock, make_optimizer, make_schedule
from omnibind.train.step import Stepper, check_accumulation
from omnibind.yamlconfig import to_yaml

log = logging.getLogger("omnibind.train")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch so that a run is reproducible."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class Trainer:
    """Holds the pieces of one run; `run()` trains to cfg.train.steps and returns the final metrics."""

    def __init__(self, cfg: TrainConfig, resume: bool = False, show_progress: bool = True) -> None:
        self.cfg, self.info = cfg, distributed.setup()
        self.run_dir, self.show_progress = Path(cfg.run_dir), show_progress and self.info.is_main
        self.ckpt_dir = self.run_dir / "checkpoints"
        self.objective = make_objective(cfg, self.info)
        check_accumulation(self.objective, cfg.train.accum_steps)  # before the model and data are built
        seed_everything(cfg.seed)  # identical initial weights on every rank
        self.model = build_model(cfg)
        owned = self.objective.modules(self.model)  # e.g. a decoder: trained, locked and saved with the towers
        for name, module in owned.items():
            self.model.add_module(name, module)
        self.frozen = lock(self.model, cfg.lock)
        for tower in self.model.towers.values():
            tower.encoder.grad_checkpointing = cfg.train.grad_checkpointing
        self.model.to(self.info.device).train()
        if cfg.train.compile:
            for tower in self.model.towers.values():
                tower.compile()
        self.wrapped = distributed.wrap(self.model, cfg.train.strategy, self.info,
                                        find_unused=not self.objective.reads_every_parameter, outside=tuple(owned))
        self.optimizer = make_optimizer(self.model, cfg.optim, self.info.device)
        self.scheduler = make_schedule(self.optimizer, cfg.optim, cfg.train.steps)
        self.data = build_data(cfg, self.model, self.info, self.show_progress)
        self.stepper = Stepper(self.wrapped, self.objective, self.optimizer, self.scheduler, self.info.device,
                               cfg.train.precision, cfg.train.accum_steps, cfg.optim.grad_clip, tuple(owned))
        self.step = 0
        self._eval_examples: dict[str, list[Any]] | None = None
        self._caption_eval = CaptionEvalSetup(cfg, self.objective)  # a captioning run also captions each split
        self._prepare_run_dir(resume)

    def _prepare_run_dir(self, resume: bool) -> None:
        if self.info.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            for stale in self.ckpt_dir.glob("step-*.tmp"):
                shutil.rmtree(stale, ignore_errors=True)  # a write that a crash cut short
            (self.run_dir / "config.yaml").write_text(to_yaml(self.cfg))
            _log_to_file(self.run_dir / "train.log")
        distributed.barrier()
        folder = state.latest(self.ckpt_dir) if resume else None
        if folder is not None:
            self.step, position = state.load(folder, self.wrapped, self.optimizer, self.scheduler, self.info)
            self.data.load_state_dict(position)
            log.info("resumed from %s at step %d", folder, self.step)
        elif resume:
            log.info("no checkpoint in %s: starting from step 0", self.ckpt_dir)

    def run(self) -> dict[str, float]:
        """Train to the configured number of steps; checkpoint every ckpt_every steps and at the end."""
        cfg, total = self.cfg.train, self.cfg.train.steps
        metrics_log = MetricsLog(self.run_dir) if self.info.is_main else None
        pairs_per_step = self.cfg.data.batch_size
        last: dict[str, float] = {}
        batches = iter(self.data)
        clock = {"checkpoint": 0.0, "eval": 0.0}  # seconds outside the training steps, kept apart
        with progress_bar(disable=not self.show_progress) as progress:
            task = progress.add_task("training", total=total, completed=self.step, unit="steps")
            start, start_step = time.perf_counter(), self.step
            while self.step < total:
                metrics = self.stepper(next(batches))
                self.step += 1
                progress.advance(task)
                if self.step % cfg.log_every == 0 or self.step == total:
                    training = time.perf_counter() - start - clock["checkpoint"] - clock["eval"]
                    rate = pairs_per_step * (self.step - start_step) / training  # training steps only
                    last = self._log(metrics, rate, metrics_log)
                    progress.update(task, description=f"training loss {last['loss']:.4f} {rate:,.0f} pairs/s")
                if self.step % cfg.ckpt_every == 0 or self.step == total:
                    with _timed(clock, "checkpoint"):
                        self.save()
                if self._eval_due(total):
                    with _timed(clock, "eval"):
                        self.evaluate(metrics_log)
        if metrics_log is not None:
            metrics_log.close()
            seconds = time.perf_counter() - start
            self._write_summary(last, {"seconds": seconds, "train_seconds": seconds - sum(clock.values()),
                                       "eval_seconds": clock["eval"], "checkpoint_seconds": clock["checkpoint"]},
                                self.step - start_step)
        return last

    def _write_summary(self, last: dict[str, float], times: dict[str, float], steps: int) -> None:
        """summary.json: what the run did and on what, for studies and reports (rank 0). `times` holds
        `seconds` (the whole loop of this process), split into `train_seconds` (the training steps, data
        loading and logging included), `eval_seconds` and `checkpoint_seconds`."""
        counts = {"trainable": 0, "frozen": 0}
        for p in self.model.parameters():
            counts["trainable" if p.requires_grad else "frozen"] += p.numel()
        summary = {"steps": self.step, "examples_seen": self.step * self.cfg.data.batch_size,
                   **times, "steps_this_process": steps, "parameters": counts,
                   "final": last, "hardware": distributed.describe(self.info), "torch": torch.__version__}
        (self.run_dir / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")

    def _log(self, metrics: dict[str, torch.Tensor], rate: float, metrics_log: MetricsLog | None) -> dict[str, float]:
        values = {k: float(v) for k, v in metrics.items()}  # the one host sync, every log_every steps
        if self.info.distributed:  # a rank's loss and parts are its share (ring) or a copy (gather): average
            values.update(_mean_over_ranks({k: v for k, v in values.items() if _is_loss(k)}))
        values.update(lr=self.scheduler.get_last_lr()[0], pairs_per_s=rate,
                      t=self.model.logit_scale.exp().item(), b=self.model.logit_bias.item())
        if metrics_log is not None:
            metrics_log.write(self.step, values)
            log.info("step %d %s", self.step, " ".join(f"{k}={v:.5g}" for k, v in values.items()))
        return values

    def _eval_due(self, total: int) -> bool:
        every = self.cfg.eval.every
        return bool(self.cfg.eval.splits) and (self.step == total or (every > 0 and self.step % every == 0))

    def evaluate(self, metrics_log: MetricsLog | None) -> dict[str, dict[str, float]]:
        """Run the evaluators on the configured splits; rank 0 writes eval/<split>.json and logs them.

        Under FSDP every rank runs the same evaluation (the sharded towers need all ranks); otherwise
        rank 0 alone does and the others wait. A captioning run is also evaluated as the Generator its
        checkpoint loads as (its tasks, its training captions for the baselines: `train/caption_eval.py`)."""
        from omnibind.evaluate.captioning import caption_settings
        from omnibind.evaluate.data import load_examples
        from omnibind.evaluate.run import evaluate_splits

        results: dict[str, dict[str, float]] = {}
        everyone = self.info.distributed and self.cfg.train.strategy == "fsdp"
        if self.info.is_main or everyone:
            if self._eval_examples is None:
                self._eval_examples = {name: load_examples(spec, self.cfg.eval.label_field, self.cfg.eval.limit)
                                       for name, spec in self.cfg.eval.splits.items()}
            self.model.eval()
            out = self.run_dir if self.info.is_main else None
            captions = self._caption_eval.settings(self.model)
            with caption_settings(captions) if captions is not None else contextlib.nullcontext():
                results = evaluate_splits(self.model, self._eval_examples, out, self.cfg.eval.templates)
            self.model.train()
            if metrics_log is not None:
                metrics_log.write(self.step, {f"eval/{split}/{k}": v for split, m in results.items()
                                              for k, v in m.items()})
        distributed.barrier()
        return results

    def save(self) -> Path:
        """Write the checkpoint of the current step (all ranks take part)."""
        return state.save(self.ckpt_dir, self.step, self.wrapped, self.optimizer, self.scheduler,
                          self.data.state_dict(), self.info, self.cfg.train.keep_last,
                          self.objective.checkpoint_sections())

    def final_model_dir(self) -> Path:
        """The folder of the newest checkpoint, loadable with omnibind.load."""
        folder = state.latest(self.ckpt_dir)
        assert folder is not None and (folder / checkpoint.CONFIG_FILE).is_file()
        return folder


@contextlib.contextmanager
def _timed(clock: dict[str, float], key: str) -> Iterator[None]:
    """Add the wall-clock seconds of the block to clock[key]."""
    start = time.perf_counter()
    try:
        yield
    finally:
        clock[key] += time.perf_counter() - start


def _is_loss(key: str) -> bool:
    """"loss" and its named parts "loss/<part>"."""
    return key == "loss" or key.startswith("loss/")


def _mean_over_ranks(values: dict[str, float]) -> dict[str, float]:
    """The mean of each value over the ranks, in one all-reduce (every rank passes the same keys)."""
    keys = sorted(values)
    tensor = torch.tensor([values[k] for k in keys], dtype=torch.float64)
    torch.distributed.all_reduce(tensor)
    tensor /= torch.distributed.get_world_size()
    return dict(zip(keys, tensor.tolist(), strict=True))


def _log_to_file(path: Path) -> None:
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)


def train(cfg: TrainConfig, resume: bool = False, show_progress: bool = True) -> dict[str, Any]:
    """Run a whole training job in this process (one rank of a torchrun job, or alone)."""
    trainer = Trainer(cfg, resume, show_progress)
    try:
        metrics = trainer.run()
        return {"step": trainer.step, "metrics": metrics, "checkpoint": str(trainer.final_model_dir())}
    finally:
        distributed.teardown()
