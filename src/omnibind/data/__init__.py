"""Datasets: WebDataset shards and JSONL manifests, the resumable multi-rank loader, the starter dataset."""

from omnibind.data.loader import LoaderConfig, ResumableLoader, make_loader
from omnibind.data.skips import SkipStats

__all__ = ["LoaderConfig", "ResumableLoader", "SkipStats", "make_loader"]
