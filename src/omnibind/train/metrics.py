"""Run-folder logging on rank 0; it lives in omnibind.runlog (below train/ and evaluate/), re-exported here
for code that imported it from train/."""

from omnibind.runlog import MetricsLog, read_metrics

__all__ = ["MetricsLog", "read_metrics"]
