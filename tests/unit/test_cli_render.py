"""The short forms the CLI prints: a connector's checkpoint, whatever its shape."""

from __future__ import annotations

from typing import Any

from hub.cli.render import CHECKPOINT_LINES, MAP_ENTRIES, checkpoint_lines
from hub.cursor import OverlapCursor

HIGH_S = 1_764_000_000.5  # 2025-11-24 16:00:00.5 UTC
"""A high-water mark in epoch seconds."""


def _cursor(lag: float, high: float | None, seen: int) -> dict[str, Any]:
    c = OverlapCursor(lag=lag, high=high)
    c.seen = {f"k{i}": (f"v{i}", high or 0.0) for i in range(seen)}
    return c.to_json()


def test_a_map_of_objects_gives_a_line_per_object_with_its_mark_and_the_keys_seen() -> None:
    lines = checkpoint_lines(
        {
            "version": 1,
            "objects": {  # the Tryton source's shape: stamps in epoch microseconds
                "projects": _cursor(60e6, HIGH_S * 1e6, 3),
                "employees<party": _cursor(60e6, None, 0),
            },
        }
    )
    assert lines == [
        "version 1",
        "objects/projects: lag 60000000, high 2025-11-24 16:00:00Z, seen 3",
        "objects/employees<party: lag 60000000, high —, seen 0",
    ]


def test_a_record_inside_the_top_gets_its_own_line_deeper_ones_dotted_pairs() -> None:
    one = {"version": 1, "cursor": _cursor(10, HIGH_S, 2), "reset_floor": None}
    assert checkpoint_lines(one) == [
        "version 1, reset_floor —",
        "cursor: lag 10, high 2025-11-24 16:00:00Z, seen 2",
    ]
    several = {
        "version": 1,
        "accounts": {"ann": {"cursor": _cursor(10, HIGH_S, 1), "reset_floor": None}},
        "tags": {"from": "ann", "cursor": _cursor(10, None, 0), "reset_floor": None},
    }
    assert checkpoint_lines(several) == [
        "version 1",
        "accounts/ann: cursor.lag 10, cursor.high 2025-11-24 16:00:00Z, cursor.seen 1, "
        "reset_floor —",
        "tags: from ann, cursor.lag 10, cursor.high —, cursor.seen 0, reset_floor —",
    ]


def test_long_values_are_cut_times_read_as_times_and_long_maps_and_summaries_end_early() -> None:
    files = {
        f"time_{i}.csv": {"offset": 10 * i, "mtime_ns": int(HIGH_S * 1e9), "head": "ab" * 16}
        for i in range(MAP_ENTRIES + 2)
    }
    lines = checkpoint_lines({"objects": {"time_entries": files}})
    assert lines[0] == (
        "objects/time_entries/time_0.csv: offset 0, mtime_ns 2025-11-24 16:00:00Z, "
        "head abababababa…"
    )
    assert lines[MAP_ENTRIES] == "objects/time_entries/… 2 more"
    many = {f"o{i}": {f"f{j}": {"n": j} for j in range(MAP_ENTRIES)} for i in range(3)}
    lines = checkpoint_lines(many)
    assert len(lines) == CHECKPOINT_LINES
    assert lines[-1] == f"… {3 * MAP_ENTRIES - CHECKPOINT_LINES + 1} more lines (status --json)"
    assert checkpoint_lines({"size": 1_764_000_000, "at": 5}) == ["size 1764000000, at 5"]


def test_anything_else_is_shown_plainly() -> None:
    assert checkpoint_lines(None) == ["—"]
    assert checkpoint_lines({}) == ["{}"]
    assert checkpoint_lines({"version": 1, "objects": {}, "done": True}) == [
        "version 1, objects 0, done true"
    ]
    assert checkpoint_lines("2026-11-25T10:00:00Z/42") == ["2026-11-25T10:00:00Z/42"]
    assert checkpoint_lines(17) == ["17"]
    assert checkpoint_lines(list(range(100))) == [
        "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, …"
    ]
