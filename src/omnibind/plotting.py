"""Headless plotting shared by reports and studies: pyplot on the file-only Agg backend, and saving."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend (no display needed); imported on first use only."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig: Any, out: Path, dpi: float | str = "figure") -> Path:
    """Lay the figure out tightly, write it to `out` and free it; returns `out`."""
    fig.tight_layout()
    fig.savefig(out, dpi=dpi)
    pyplot().close(fig)
    return out
