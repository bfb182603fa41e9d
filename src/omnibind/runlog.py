"""Run-folder logging: metrics as JSON lines (and TensorBoard scalars) written by training, read back by
evaluation reports and studies. It sits below train/ and evaluate/ so that neither imports the other."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

METRICS_FILE = "metrics.jsonl"


class MetricsLog:
    """Appends {"step", ...} records to metrics.jsonl and mirrors them to TensorBoard under tb/."""

    def __init__(self, run_dir: Path, tensorboard: bool = True) -> None:
        self.path = Path(run_dir) / METRICS_FILE
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(Path(run_dir) / "tb"))

    def write(self, step: int, values: dict[str, float]) -> None:
        """Record one set of scalars for `step`."""
        record: dict[str, Any] = {"step": step, "time": time.time(), **values}
        with self.path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")
        if self.writer is not None:
            for key, value in values.items():
                self.writer.add_scalar(key, value, step)

    def close(self) -> None:
        """Flush TensorBoard's files."""
        if self.writer is not None:
            self.writer.close()


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """The records of a run's metrics.jsonl, in order."""
    path = Path(run_dir) / METRICS_FILE
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
