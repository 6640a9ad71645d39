"""Shared benchmark helpers: synthetic time entries, timing, peak RSS and the JSON result line.

Every benchmark prints a readable table, then as its **last line** one JSON object with at
least `name`, `n`, `per_s`, `baseline_per_s`, `ratio` and `peak_rss_mb`.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import json
import pstats
import random
import resource
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from hub.types import Batch, Change, ObjectSchema

SYSTEM = "tracker"
OBJECT = "time_entries"
RECORD_SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "TimeEntry",
    "fields": [
        {"name": "id", "type": "string"},
        {"name": "person", "type": "string"},
        {"name": "day", "type": "string"},
        {"name": "minutes", "type": "long"},
        {"name": "description", "type": ["null", "string"], "default": None},
    ],
}
OBJECT_SCHEMA = ObjectSchema(OBJECT, "id", RECORD_SCHEMA)

MAPPING_SPEC: dict[str, Any] = {
    "name": "bench",
    "entities": {"TimeEntry": {"owner": SYSTEM}},
    "sources": [
        {
            "system": SYSTEM,
            "object": OBJECT,
            "entity": "TimeEntry",
            "id": "$key",
            "fields": {
                "person_id": "person | canonical Person",
                "project_id": "description | tag_path 0",
                "task_id": "description | tag_path 2",
                "date": "day | date",
                "minutes": "minutes | int",
                "billable": "description | has_tag billable",
                "approved": "description | has_tag approved",
                "description": "description | strip_tags | default ''",
            },
        }
    ],
}
"""A realistic inbound mapping: tag extraction, int, date, and a canonical person id."""

_VERBS = ("work on", "review", "meeting about", "fix bugs in", "deploy", "plan", "write docs for")
_THINGS = ("the homepage", "checkout", "API v2", "sprint 14", "the data import", "invoices")
_CLIENTS = ("acme", "globex", "initech", "umbrella", "hooli", "stark")
_PROJECTS = ("website", "mobile", "erp", "analytics")
_TASKS = ("design", "build", "qa", "support")
_DAY0 = dt.date(2026, 1, 1)
_T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _description(rng: random.Random) -> str:
    words = [rng.choice(_VERBS), rng.choice(_THINGS)]
    if rng.random() < 0.9:
        path = f"#{rng.choice(_CLIENTS)}/{rng.choice(_PROJECTS)}/{rng.choice(_TASKS)}"
        words.insert(rng.randrange(3), path)
    if rng.random() < 0.7:
        words.append("#billable")
    if rng.random() < 0.5:
        words.append("#approved")
    return " ".join(words)


def time_entry_changes(n: int, updates: float = 0.1, seed: int = 42) -> list[Change]:
    """`n` deterministic changes; a fraction `updates` re-captures an earlier entry, edited."""
    rng = random.Random(seed)
    people = [f"u{i:04d}" for i in range(250)]
    days = [(_DAY0 + dt.timedelta(days=d)).isoformat() for d in range(330)]
    current: list[dict[str, Any]] = []
    out = []
    for i in range(n):
        if current and rng.random() < updates:
            old = current[rng.randrange(len(current))]
            record = {**old, "minutes": old["minutes"] % 480 + rng.randint(1, 30)}
            if rng.random() < 0.3:
                record["description"] = _description(rng)
            current[int(old["id"][3:])] = record
        else:
            record = {
                "id": f"te-{len(current):08d}",
                "person": rng.choice(people),
                "day": rng.choice(days),
                "minutes": rng.randint(5, 480),
                "description": _description(rng),
            }
            current.append(record)
        when = _T0 + dt.timedelta(seconds=i)
        out.append(Change(OBJECT, record["id"], "upsert", record, str(i + 1), when))
    return out


def batches(changes: list[Change], size: int) -> list[Batch]:
    """The changes in batches of `size`, each with a checkpoint covering it."""
    return [
        Batch(tuple(changes[i : i + size]), {"offset": min(i + size, len(changes))})
        for i in range(0, len(changes), size)
    ]


class ListSource:
    """A Source over pre-built batches: reading costs nothing measurable."""

    system = SYSTEM

    def __init__(self, prebuilt: list[Batch]) -> None:
        self.prebuilt = prebuilt

    def discover(self) -> list[ObjectSchema]:
        return [OBJECT_SCHEMA]

    def read(self, checkpoint: Any, batch_size: int) -> Iterator[Batch]:
        start = 0 if checkpoint is None else checkpoint["offset"]
        for b in self.prebuilt:
            if b.checkpoint["offset"] > start:
                yield b

    def current_keys(self, object: str) -> set[str] | None:
        return None

    def close(self) -> None:
        pass


# -- measuring ----------------------------------------------------------------------------------


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MB (Linux reports KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def best_of(repeat: int, run: Callable[[], float]) -> float:
    """The smallest of `repeat` timings returned by `run` (seconds)."""
    return min(run() for _ in range(repeat))


@contextmanager
def timer() -> Iterator[list[float]]:
    """`with timer() as t: ...` then t[0] is the elapsed wall time in seconds."""
    out = [0.0]
    start = time.perf_counter()
    try:
        yield out
    finally:
        out[0] = time.perf_counter() - start


@contextmanager
def profiled(path: str | None) -> Iterator[None]:
    """cProfile the block when `path` is given: stats saved there, top 25 printed to stderr."""
    if not path:
        yield
        return
    prof = cProfile.Profile()
    prof.enable()
    try:
        yield
    finally:
        prof.disable()
        prof.dump_stats(path)
        pstats.Stats(prof, stream=sys.stderr).sort_stats("tottime").print_stats(25)


def rate(n: int, seconds: float) -> float:
    return round(n / seconds, 1) if seconds > 0 else 0.0


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--events", type=int, default=100_000, help="number of changes (N)")
    p.add_argument("--repeat", type=int, default=3, help="take the best of R runs (default 3)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--profile", metavar="FILE", help="cProfile the synchub phase into FILE")
    return p


def emit(result: dict[str, Any]) -> None:
    """Print the result as the final line: one JSON object."""
    missing = {"name", "n", "per_s", "baseline_per_s", "ratio", "peak_rss_mb"} - result.keys()
    assert not missing, f"result lacks {missing}"
    print(json.dumps(result, sort_keys=True), flush=True)
