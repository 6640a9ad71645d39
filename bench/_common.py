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


def _record(key: str, rng: random.Random, people: list[str], days: list[str]) -> dict[str, Any]:
    return {
        "id": key,
        "person": rng.choice(people),
        "day": rng.choice(days),
        "minutes": rng.randint(5, 480),
        "description": _description(rng),
    }


def time_entry_batches(n: int, size: int, updates: float = 0.1, seed: int = 42) -> Iterator[Batch]:
    """`n` deterministic changes in batches of `size`, generated lazily (memory stays flat).

    A fraction `updates` of the changes re-captures an earlier entry with edited values; the
    rest create new entries. Each batch's checkpoint is the offset after it.
    """
    rng = random.Random(seed)
    people = [f"u{i:04d}" for i in range(250)]
    days = [(_DAY0 + dt.timedelta(days=d)).isoformat() for d in range(330)]
    created = 0
    for start in range(0, n, size):
        changes = []
        for i in range(start, min(start + size, n)):
            if created and rng.random() < updates:
                key = f"te-{rng.randrange(created):08d}"
            else:
                key = f"te-{created:08d}"
                created += 1
            record = _record(key, rng, people, days)
            when = _T0 + dt.timedelta(seconds=i)
            changes.append(Change(OBJECT, key, "upsert", record, str(i + 1), when))
        yield Batch(tuple(changes), {"offset": start + len(changes)})


class GenSource:
    """A Source over `time_entry_batches`. The time spent building batches is summed in
    `build_seconds`, so a benchmark can subtract it: the source's own cost is not measured."""

    system = SYSTEM

    def __init__(self, n: int, size: int, updates: float = 0.1, seed: int = 42) -> None:
        self.args = (n, size, updates, seed)
        self.build_seconds = 0.0

    def discover(self) -> list[ObjectSchema]:
        return [OBJECT_SCHEMA]

    def read(self, checkpoint: Any, batch_size: int) -> Iterator[Batch]:
        yield from self.batches()

    def batches(self) -> Iterator[Batch]:
        """The batches, timing only their construction."""
        it = time_entry_batches(*self.args)
        while True:
            t = time.perf_counter()
            b = next(it, None)
            self.build_seconds += time.perf_counter() - t
            if b is None:
                return
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
