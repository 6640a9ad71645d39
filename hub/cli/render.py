"""Rich rendering helpers the commands share: the two consoles, progress bars, JSON output,
times and checkpoints made short for a table."""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import typer
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


def parse_time(text: str) -> dt.datetime:
    """An ISO 8601 time from the command line (UTC when it names no zone)."""
    try:
        t = dt.datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not an ISO 8601 time (e.g. 2026-11-25T14:30:00Z)"
        ) from None
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def short_time(iso: str | None) -> str:
    """An ISO UTC time, to the second, for a table."""
    return "" if iso is None else iso[:19].replace("T", " ")


CHECKPOINT_LINES = 10
"""Most lines of one connector's checkpoint summary (`status --json` has it whole)."""
MAP_ENTRIES = 6
"""Most entries of one map (objects, files, accounts) a summary gives a line each."""
_VALUE_CHARS = 12
_LINE_CHARS = 60
_TIME_KEY = re.compile(r"(^|_)(high|low|since|until|floor|time|stamp|at|mtime|ctime)(_|$)")
_EPOCH = ((1e9, 1), (1e12, 1e3), (1e15, 1e6), (1e18, 1e9))
"""Where an epoch time from 2001 on starts in s, ms, µs and ns, each with its divisor."""


def checkpoint_lines(checkpoint: Any) -> list[str]:
    """A connector's checkpoint as a few short lines, whatever its shape.

    A dict of dicts (objects, files, accounts) is a map: a line per entry, named by its path
    (`objects/projects: ...`), at most MAP_ENTRIES, then how many more. A dict with a plain
    value is a record: a line of `key value` pairs, where a record inside it adds dotted pairs
    (`cursor.high ...`; at the top it gets a line of its own) and any other dict or list
    counts its entries (`seen 12`). Long strings are cut; a number whose key names a time
    (high, since, mtime_ns, ...) and reads as one in s, ms, µs or ns since the epoch is
    shown as a UTC time. At most CHECKPOINT_LINES lines. A checkpoint that is not a dict is
    shown as it is, cut at a line's length."""
    if checkpoint is None:
        return ["—"]
    if not isinstance(checkpoint, dict):  # a position of its own: shown as it is, up to a line
        text = checkpoint if isinstance(checkpoint, str) else json.dumps(checkpoint)
        return [text if len(text) <= _LINE_CHARS else text[: _LINE_CHARS - 1] + "…"]
    lines: list[str] = []
    _walk(checkpoint, "", lines)
    if len(lines) > CHECKPOINT_LINES:
        rest = len(lines) - CHECKPOINT_LINES + 1
        lines = [*lines[: CHECKPOINT_LINES - 1], f"… {rest} more lines (status --json)"]
    return lines or ["{}"]


def _walk(d: dict[str, Any], path: str, lines: list[str]) -> None:
    """Lines for `d` at `path` ("" at the top, else ending in "/")."""
    if _is_map(d):
        items = list(d.items())
        for k, v in items[:MAP_ENTRIES]:
            _walk(v, f"{path}{k}/", lines)
        if len(items) > MAP_ENTRIES:
            lines.append(f"{path}… {len(items) - MAP_ENTRIES} more")
        return
    top = not path
    own = [
        k for k, v in d.items() if isinstance(v, dict) and (_is_map(v) or (top and _is_record(v)))
    ]
    pairs = _pairs({k: v for k, v in d.items() if k not in own}, "")
    if pairs:
        lines.append(f"{path[:-1]}: {', '.join(pairs)}" if path else ", ".join(pairs))
    for k in own:
        _walk(d[k], f"{path}{k}/", lines)


def _is_map(d: dict[str, Any]) -> bool:
    """A non-empty dict whose values are all dicts."""
    return bool(d) and all(isinstance(v, dict) for v in d.values())


def _is_record(d: dict[str, Any]) -> bool:
    """A dict with a plain value (its keys are names, not data)."""
    return any(not isinstance(v, dict | list) for v in d.values())


def _pairs(d: dict[str, Any], prefix: str) -> list[str]:
    pairs = []
    for k, v in d.items():
        if isinstance(v, dict) and _is_record(v):
            pairs += _pairs(v, f"{prefix}{k}.")
        elif isinstance(v, dict | list):
            pairs.append(f"{prefix}{k} {len(v)}")
        else:
            pairs.append(f"{prefix}{k} {_short(k, v)}")
    return pairs


def _short(key: str | None, v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, int | float):
        if key is not None and _TIME_KEY.search(key):
            for low, divisor in _EPOCH:
                if low <= v < low * 4:  # 2001 .. 2096
                    t = dt.datetime.fromtimestamp(v / divisor, dt.UTC)
                    return t.strftime("%Y-%m-%d %H:%M:%SZ")
        return str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)
    text = str(v)
    return text if len(text) <= _VALUE_CHARS else text[: _VALUE_CHARS - 1] + "…"
