"""One progress-bar style for long work: count, throughput and ETA (rich)."""

from __future__ import annotations

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text


class RateColumn(ProgressColumn):
    """Items per second, in the unit the task names (task field `unit`, default "items")."""

    def render(self, task: Task) -> Text:
        unit = task.fields.get("unit", "items")
        return Text(f"{task.speed:.1f} {unit}/s" if task.speed else f"? {unit}/s")


def progress_bar(disable: bool = False) -> Progress:
    """A rich Progress with description, bar, done/total, throughput and ETA; transient when finished."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeRemainingColumn(),
        disable=disable,
        transient=True,
    )
