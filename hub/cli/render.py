"""Rich rendering helpers the commands share: the two consoles, progress bars, JSON output."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from hub import queries
from projections import Projector

out = Console()
err = Console(stderr=True)

PREVIEW_ROWS = 50
"""Rows of each preview table shown in the terminal (--json has them all)."""


def progress_bar(label: str, quiet: bool) -> Progress:
    """A progress bar on stderr (hidden with --json), cleared when done."""
    return Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=quiet,
    )


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(queries.jsonable(value), indent=2, sort_keys=True) + "\n")


@contextmanager
def upgrade_bar() -> Iterator[Callable[[int, int], None]]:
    """A progress callback for the rebuild a Projector runs when it finds tables written by an
    older synchub; the bar appears only if that rebuild happens."""
    progress = progress_bar("rebuilding projections written by an older synchub", quiet=False)
    task: TaskID | None = None

    def update(done: int, total: int) -> None:
        nonlocal task
        if task is None:
            progress.start()
            task = progress.add_task("", total=total)
        progress.update(task, completed=done, total=total)

    try:
        yield update
    finally:
        if task is not None:  # a bar that never started would still print a newline
            progress.stop()


def say_upgraded(projector: Projector) -> None:
    if projector.upgraded:
        err.print(f"[dim]rebuilt {', '.join(projector.upgraded)}: written by an older synchub[/]")


def more(total: int, what: str) -> None:
    if total > PREVIEW_ROWS:
        out.print(f"[dim]… and {total - PREVIEW_ROWS} more {what}: --json lists them all[/]")
