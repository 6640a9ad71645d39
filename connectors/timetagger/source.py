"""TimeTagger source: time records and per-tag metadata, polled from `GET updates?since=`.

TimeTagger stamps each write with a server time `st` taken *before* its database lock, so a
write can become visible with an `st` older than one already read (measured: a strict cursor
lost ~40% of 600 concurrent writes). Every poll therefore re-reads the last `lag` seconds and
drops what it has seen, by (key, version) with version = "<mt>:<st>" (`st` changes on every
write): `hub.spi.OverlapCursor`. One cursor covers both objects (they share `st`).

Objects:
- `records`: one per time record; a soft-deleted record (description starting "HIDDEN") is a
  delete change. position = `st`, source_time = `mt` (the client's modification time).
- `tags`: the settings `"taginfo #<tag>"` (per-tag metadata as a JSON object); key = the tag
  without '#'. A value that is null, empty, or has `status: "deleted"` is a delete change.

A `reset` in the answer (TimeTagger's data was reset after the cursor) starts over: every
item is read again.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterator, Sequence
from typing import Any

from connectors.timetagger.client import TimeTaggerClient, Updates
from connectors.timetagger.tags import is_hidden
from hub.spi import JSON, Batch, Change, ConnectorError, ObjectSchema, OverlapCursor

__all__ = [
    "CHECKPOINT_VERSION",
    "OBJECTS",
    "TAGINFO",
    "TimeTaggerSource",
    "is_deleted_taginfo",
    "tag_of_setting",
]

CHECKPOINT_VERSION = 1
TAGINFO = "taginfo "
"""Prefix of the settings keys that hold per-tag metadata ("taginfo #acme/website")."""

_NULLABLE_STRING: list[str] = ["null", "string"]

RECORDS_SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "timetagger_record",
    "fields": [
        {"name": "key", "type": "string"},
        {"name": "t1", "type": "long"},
        {"name": "t2", "type": "long"},
        {"name": "ds", "type": "string"},
        {"name": "mt", "type": "double"},
        {"name": "st", "type": "double"},
        {"name": "running", "type": "boolean"},
        {"name": "hidden", "type": "boolean"},
        {"name": "duration", "type": "long"},
    ],
}
TAGS_SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "timetagger_tag",
    "fields": [
        {"name": "tag", "type": "string"},
        {"name": "name", "type": _NULLABLE_STRING, "default": None},
        {"name": "status", "type": _NULLABLE_STRING, "default": None},
        {"name": "info", "type": "string"},
    ],
}
OBJECTS = {
    "records": ObjectSchema("records", "key", RECORDS_SCHEMA),
    "tags": ObjectSchema("tags", "tag", TAGS_SCHEMA),
}

_Item = tuple[float, str, str, Change]
"""(stamp, cursor key, version, change) of one item of an answer."""


def tag_of_setting(key: str) -> str | None:
    """ "taginfo #acme/web" → "acme/web" ("taginfo #a #b" → "a b"); None for other settings."""
    if not key.startswith(TAGINFO):
        return None
    tags = [part.removeprefix("#") for part in key[len(TAGINFO) :].split()]
    return " ".join(t for t in tags if t) or None


def is_deleted_taginfo(value: Any) -> bool:
    """Whether a taginfo value means "no metadata": null, {}, or status "deleted"."""
    if value is None or value == {}:
        return True
    return isinstance(value, dict) and value.get("status") == "deleted"


class TimeTaggerSource:
    """A Source over one TimeTagger account (see the module doc for objects and semantics)."""

    def __init__(self, name: str, client: TimeTaggerClient, lag: float) -> None:
        self.system = name
        self.client = client
        self.lag = lag

    def discover(self) -> list[ObjectSchema]:
        """`records` and `tags`, with fixed schemas."""
        return list(OBJECTS.values())

    def read(self, checkpoint: JSON | None, batch_size: int) -> Iterator[Batch]:
        """Changes after `checkpoint` in (st, key) order; checkpoint = the cursor's JSON."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        cursor, floor = self._load(checkpoint)
        since = cursor.since()
        answer = self.client.updates(0.0 if since is None else since)
        restart = False
        if answer.reset:
            if since is None:  # reading everything anyway: just remember the reset
                floor = answer.server_time
            elif floor is not None and floor >= since and not self.client.updates(floor).reset:
                answer = _newer_than(answer, since)  # the reset we already started over for
            else:
                cursor, floor, restart = OverlapCursor(lag=self.lag), answer.server_time, True
        pending: list[Change] = []
        for stamp, key, version, change in self._items(answer):
            if not cursor.admit(key, version, stamp):
                continue
            pending.append(change)
            if len(pending) >= batch_size:
                yield Batch(tuple(pending), _dump(cursor, floor))
                pending = []
        if pending or restart:
            yield Batch(tuple(pending), _dump(cursor, floor))

    def current_keys(self, object: str) -> set[str]:
        """Live keys from a full read: records not hidden, tags with metadata."""
        if object not in OBJECTS:
            raise ConnectorError(
                f"connector {self.system!r} (timetagger) has no object {object!r}; "
                f"its objects are {sorted(OBJECTS)}"
            )
        answer = self.client.updates(0.0)
        if object == "records":
            return {str(r["key"]) for r in answer.records if not is_hidden(str(r.get("ds", "")))}
        keys = set()
        for setting in answer.settings:
            tag = tag_of_setting(str(setting.get("key", "")))
            if tag is not None and not is_deleted_taginfo(setting.get("value")):
                keys.add(tag)
        return keys

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self.client.close()

    # -- items → changes ------------------------------------------------------------------------

    def _items(self, answer: Updates) -> list[_Item]:
        items: list[_Item] = []
        for record in answer.records:
            stamp, version = _stamp(record)
            key = str(record.get("key"))
            items.append((stamp, f"records/{key}", version, _record_change(key, record)))
        for setting in answer.settings:
            tag = tag_of_setting(str(setting.get("key", "")))
            if tag is None:
                continue
            stamp, version = _stamp(setting)
            items.append((stamp, f"tags/{tag}", version, _tag_change(tag, setting)))
        items.sort(key=lambda item: (item[0], item[1]))
        return items

    def _load(self, checkpoint: JSON | None) -> tuple[OverlapCursor, float | None]:
        if checkpoint is None:
            return OverlapCursor(lag=self.lag), None
        try:
            if checkpoint["version"] != CHECKPOINT_VERSION:
                raise ValueError(f"version {checkpoint['version']!r}")
            floor = checkpoint.get("reset_floor")
            cursor = OverlapCursor.from_json(checkpoint["cursor"], self.lag)
            return cursor, None if floor is None else float(floor)
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise ConnectorError(
                f"connector {self.system!r} (timetagger): the stored checkpoint is not a "
                f"timetagger checkpoint version {CHECKPOINT_VERSION} ({e!r}); reset this "
                "connector's checkpoint to read everything again"
            ) from None


def _dump(cursor: OverlapCursor, floor: float | None) -> dict[str, Any]:
    return {"version": CHECKPOINT_VERSION, "cursor": cursor.to_json(), "reset_floor": floor}


def _newer_than(answer: Updates, since: float) -> Updates:
    """`answer` without the items older than `since` (a full answer made incremental)."""

    def keep(items: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        return [item for item in items if _stamp(item)[0] >= since]

    return Updates(answer.server_time, False, keep(answer.records), keep(answer.settings))


def _stamp(item: dict[str, Any]) -> tuple[float, str]:
    """(st, "<mt>:<st>"): the position of an item and a version that every write changes."""
    st = item.get("st")
    stamp = float(st) if isinstance(st, int | float) else 0.0
    return stamp, f"{item.get('mt')}:{st!r}"


def _when(mt: Any) -> dt.datetime | None:
    if isinstance(mt, bool) or not isinstance(mt, int | float) or not math.isfinite(mt):
        return None
    try:
        return dt.datetime.fromtimestamp(mt, dt.UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _record_change(key: str, item: dict[str, Any]) -> Change:
    stamp, _ = _stamp(item)
    position, when = repr(stamp), _when(item.get("mt"))
    ds = item.get("ds", "")
    if isinstance(ds, str) and is_hidden(ds):
        return Change("records", key, "delete", None, position, when)
    t1, t2, mt = item.get("t1"), item.get("t2"), item.get("mt")
    duration = t2 - t1 if isinstance(t1, int) and isinstance(t2, int) else None
    record = {
        "key": key,
        "t1": t1,
        "t2": t2,
        "ds": ds,
        "mt": float(mt) if isinstance(mt, int | float) else mt,
        "st": stamp,
        "running": duration == 0,
        "hidden": False,
        "duration": duration,
    }
    return Change("records", key, "upsert", record, position, when)


def _tag_change(tag: str, item: dict[str, Any]) -> Change:
    stamp, _ = _stamp(item)
    position, when = repr(stamp), _when(item.get("mt"))
    value = item.get("value")
    if is_deleted_taginfo(value):
        return Change("tags", tag, "delete", None, position, when)
    fields = value if isinstance(value, dict) else {}
    record = {
        "tag": tag,
        "name": fields.get("name"),
        "status": fields.get("status"),
        "info": json.dumps(value, sort_keys=True, ensure_ascii=False),
    }
    return Change("tags", tag, "upsert", record, position, when)
