"""A study: a YAML file listing training runs (one config each), the columns and metrics to tabulate and
what to plot. `run_study` trains every run that has no result yet, each in its own process (under
torchrun when it asks for several), so a study can be stopped and continued."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omnibind.errors import InputError
from omnibind.train.config import TrainConfig, load_train_config
from omnibind.yamlconfig import from_dict, load_yaml


@dataclass
class RunEntry:
    """One run of a study: its config (relative to the study file), how many processes train it, and a
    note for the table (what the run is, in a few words)."""

    config: str
    nproc: int = 1
    note: str = ""


@dataclass
class PlotSpec:
    """Lines of `metrics` over column `x` (one line per value of column `series`), or bars per run
    when x is None; `curves` adds the training-loss curves of every run over examples seen."""

    metrics: list[str] = field(default_factory=list)
    x: str | None = None
    series: str | None = None
    logx: bool = False
    curves: bool = False


@dataclass
class StudySpec:
    """The study file: runs, table columns (label: config key), metrics (label: split/metric) and plot."""

    title: str
    runs: list[RunEntry]
    columns: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, str] = field(default_factory=dict)
    plot: PlotSpec = field(default_factory=PlotSpec)


@dataclass
class Study:
    """A loaded study: its spec, its folder, and every run's resolved config by run name."""

    path: Path
    spec: StudySpec
    configs: dict[str, TrainConfig]

    @property
    def folder(self) -> Path:
        return self.path.parent

    def entry(self, name: str) -> RunEntry:
        """The study entry of run `name`."""
        return next(e for e in self.spec.runs if Path(e.config).stem == name)


def load_study(path: str | Path) -> Study:
    """Read and check a study file: every run config exists, parses, and has its own run folder."""
    path = Path(path)
    spec = from_dict(StudySpec, load_yaml(path), str(path))
    spec.runs = [from_dict(RunEntry, {"config": r} if isinstance(r, str) else r, f"{path}: runs[{i}]")
                 for i, r in enumerate(spec.runs)]
    if not spec.runs:
        raise InputError(path, "lists no runs", "runs: [{config: NAME.yaml}, ...]")
    configs: dict[str, TrainConfig] = {}
    for entry in spec.runs:
        name = Path(entry.config).stem
        if name in configs:
            raise InputError(path, f"run {name!r} is listed twice", "one entry per config")
        configs[name] = load_train_config(path.parent / entry.config)
    run_dirs = [c.run_dir for c in configs.values()]
    if len(set(run_dirs)) != len(run_dirs):
        raise InputError(path, "two runs share a run_dir", "a run folder per run")
    for label in spec.plot.metrics:
        if label not in spec.metrics:
            raise InputError(f"{path}: plot.metrics", f"{label!r} is not a metric label",
                             f"one of {list(spec.metrics)}")
    for key in (spec.plot.x, spec.plot.series):
        if key is not None and key not in spec.columns:
            raise InputError(f"{path}: plot", f"{key!r} is not a column label", f"one of {list(spec.columns)}")
    return Study(path, spec, configs)


def is_done(cfg: TrainConfig) -> bool:
    """A run is done once its summary and every evaluated split are written."""
    run = Path(cfg.run_dir)
    return (run / "summary.json").is_file() and all((run / "eval" / f"{s}.json").is_file() for s in cfg.eval.splits)


def launch_command(config: Path, nproc: int) -> list[str]:
    """The command that trains `config` with `nproc` processes (torchrun's standalone rendezvous)."""
    train = ["-m", "omnibind.cli", "train", str(config)]
    if nproc == 1:
        return [sys.executable, *train]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", *train]


def run_study(study: Study, only: list[str] | None = None, force: bool = False) -> list[str]:
    """Train the study's runs in order (those in `only`, or all), skipping finished ones unless `force`;
    a run that is trained starts from an empty run folder (no earlier logs or checkpoints mixed in).
    Returns the names trained. A failed run stops the study with its command and exit status."""
    trained = []
    for name, cfg in study.configs.items():
        if (only and name not in only) or (is_done(cfg) and not force):
            continue
        entry = study.entry(name)
        shutil.rmtree(cfg.run_dir, ignore_errors=True)  # an unfinished or forced run starts from a clean folder
        command = launch_command(study.folder / entry.config, entry.nproc)
        print(f"[{name}] {' '.join(command)}", flush=True)
        env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", _threads_per_process(entry.nproc))}
        status = subprocess.run(command, env=env, check=False).returncode
        if status != 0:
            raise InputError(study.folder / entry.config, f"training exited with status {status}",
                             "a run that completes (see its train.log)")
        trained.append(name)
    return trained


def _threads_per_process(nproc: int) -> str:
    """Split the machine's cores between the processes of a CPU run, as torchrun would not."""
    return str(max(1, (os.cpu_count() or 1) // nproc))


def config_value(cfg: TrainConfig | dict[str, Any], key: str) -> Any:
    """The value of a dotted key ("data.batch_size") in a config, or None where it is absent."""
    node: Any = cfg
    for part in key.split("."):
        node = node.get(part) if isinstance(node, dict) else getattr(node, part, None)
        if node is None:
            return None
    return node
