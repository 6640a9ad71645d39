"""A timesheet line's fields in Tryton's terms: synchub's description markers, the
conversion of a delta's fields to Tryton's types, and the comparison of what was written with
what reads back. Used by the sink (writing) and the source (reading markers back).

- Markers: a create puts `[synchub:<16 hex>]` (a hash of the object and canonical id it is for:
  `create_marker`) at the end of the description; lines written by earlier versions carry the
  hash of the idempotency key (`marker`). `split_marker` takes it off a description again.
- `desired(fields, create=...)` checks a delta's fields and turns them into Tryton's types
  (ids, a date, a duration from `hours` or `duration`), raising `Refused` saying what to fix.
- `difference(current, values, line_id)` says why a line read back does not hold `values`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from hub.spi import Delta

__all__ = [
    "LINE_FIELDS",
    "Line",
    "Refused",
    "create_marker",
    "desired",
    "difference",
    "marker",
    "same",
    "split_marker",
    "target_id",
    "tryton_id",
    "with_marker",
]

LINE_FIELDS = ("employee", "work", "date", "hours", "duration", "description", "company")
"""The fields a delta may give for a timesheet line (`task` is turned into `work` first)."""
_MARKER = re.compile(r"\s*\[synchub:([0-9a-f]{16})\]\s*\Z")


def marker(idempotency_key: str) -> str:
    """The description marker of a write: `[synchub:<first 16 hex of sha256(key)>]`."""
    return f"[synchub:{hashlib.sha256(idempotency_key.encode()).hexdigest()[:16]}]"


def create_marker(delta: Delta) -> str:
    """The marker of the line a create makes: one per target record (object, canonical id),
    whatever the fields and the idempotency key of the attempt."""
    return marker(f"{delta.object}\x1f{delta.canonical_id}")


def split_marker(description: str | None) -> tuple[str | None, str | None]:
    """(description without a trailing marker or None if nothing else, the marker's 16 hex)."""
    if description is None:
        return None, None
    found = _MARKER.search(description)
    if found is None:
        return description, None
    return description[: found.start()] or None, found.group(1)


def with_marker(description: str | None, mark: str | None) -> str | None:
    """`description` followed by `mark` (a full `[synchub:...]`), or unchanged without one."""
    if mark is None:
        return description
    return f"{description} {mark}" if description else mark


class Refused(Exception):
    """A delta that cannot be written as given (bad fields): rejected, nothing sent."""


@dataclass(frozen=True, slots=True)
class Line:
    """Desired timesheet-line values in Tryton's types (only the fields the delta gave)."""

    values: dict[str, Any]
    description_given: bool


def desired(fields: Mapping[str, Any], *, create: bool) -> Line:
    """The delta's fields in Tryton's types; Refused (saying what to fix) if they do not fit."""
    unknown = sorted(set(fields) - set(LINE_FIELDS))
    if unknown:
        raise Refused(
            f"unknown timesheet_lines fields {unknown}; the fields are {list(LINE_FIELDS)}"
        )
    if "hours" in fields and "duration" in fields:
        raise Refused("give either `hours` or `duration` (seconds), not both")
    values: dict[str, Any] = {}
    for name in ("employee", "work", "company"):
        if name in fields:
            values[name] = tryton_id(name, fields[name])
    if "date" in fields:
        values["date"] = _day(fields["date"])
    if "hours" in fields:
        values["duration"] = dt.timedelta(hours=_number("hours", fields["hours"]))
    elif "duration" in fields:
        values["duration"] = dt.timedelta(seconds=_number("duration", fields["duration"]))
    if "description" in fields:
        text = fields["description"]
        if text is not None and not isinstance(text, str):
            raise Refused(f"description must be text or null, got {text!r}")
        if text is not None and _MARKER.search(text):
            raise Refused("description must not end with a [synchub:...] marker")
        values["description"] = text
    if create:
        missing = [n for n in ("employee", "work", "date", "duration") if n not in values]
        if missing:
            raise Refused(
                f"a new timesheet line needs {missing} (`hours` or `duration` for the time)"
            )
    return Line(values, "description" in fields or create)


def tryton_id(name: str, value: Any) -> int:
    if isinstance(value, bool):
        raise Refused(f"{name} must be a Tryton id, got {value!r}")
    try:
        number = int(str(value).strip())
    except ValueError:
        raise Refused(f"{name} must be a Tryton id (an integer), got {value!r}") from None
    if number <= 0:
        raise Refused(f"{name} must be a positive Tryton id, got {value!r}")
    return number


def _day(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        raise Refused(f"date must be an ISO date like 2024-05-01, got {value!r}") from None


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool):
        raise Refused(f"{name} must be a number, got {value!r}")
    try:
        number = float(Decimal(str(value)))
    except (InvalidOperation, ValueError):
        raise Refused(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number) or number < 0:
        raise Refused(f"{name} must be a finite number >= 0, got {value!r}")
    return number


def target_id(delta: Delta) -> int:
    if delta.target_key is None:
        raise Refused(f"an {delta.op} needs the Tryton id of the line (target_key is missing)")
    return tryton_id("target_key", delta.target_key)


def difference(
    current: Mapping[str, Any] | None, values: Mapping[str, Any], line_id: int
) -> str | None:
    """Why line `line_id` as read back (`current`) does not hold `values`; None if it does."""
    if current is None:
        return (
            f"Tryton answered success but timesheet line {line_id} cannot be read back; will retry"
        )
    wrong = sorted(k for k, v in values.items() if not same(current.get(k), v))
    if not wrong:
        return None
    got = {k: current.get(k) for k in wrong}
    return (
        f"Tryton answered success but timesheet line {line_id} reads back with "
        f"different {', '.join(wrong)} ({got!r}); will retry"
    )


def same(current: Any, wanted: Any) -> bool:
    if isinstance(wanted, dt.timedelta) and isinstance(current, dt.timedelta):
        return abs((current - wanted).total_seconds()) < 1e-3
    return bool(current == wanted)
