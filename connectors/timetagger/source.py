"""TimeTagger source: time records and per-tag metadata, polled from `GET updates?since=`, of
one account or several (one per person).

TimeTagger stamps each write with a server time `st` taken *before* its database lock, so a
write can become visible with an `st` older than one already read (measured: a strict cursor
lost ~40% of 600 concurrent writes). Every poll therefore re-reads the last `lag` seconds and
drops what it has seen, by (key, version) with version = "<mt>:<st>" (`st` changes on every
write): `hub.spi.OverlapCursor`. One cursor per account covers both objects (they share `st`).

Accounts: built with one client (`token`), keys are TimeTagger's own and `person` is the
configured name or None; built with person → client (`accounts`), every account is polled with
its own cursor, record keys are `<person>/<record key>` and `person` names the account. Tag
metadata is read from one account only (the sink writes it to every account), with a cursor of
its own: `tags_from` if given, else the account the checkpoint read it from while that person
is still configured, else the first configured. Adding people or reordering them does not
change it; a change of that account reads the new one's tag metadata from the start.

Objects:
- `records`: one per time record; a soft-deleted record (description starting "HIDDEN") is a
  delete change. position = `st`, source_time = `mt` (the client's modification time).
  Field `person`: whose account holds the record.
- `tags`: the settings `"taginfo #<tag>"` (per-tag metadata as a JSON object); key = the tag
  without '#'. A value that is null, empty, or has `status: "deleted"` is a delete change.

A `reset` in an account's answer (its data was reset after the cursor) starts that account
over: every item of it is read again.

Checkpoint: {"version": 1, "cursor": <cursor>, "reset_floor": <float|null>} for one account;
{"version": 1, "accounts": {<person>: {"cursor": ..., "reset_floor": ...}}, "tags": {"from":
<person>, "cursor": ..., "reset_floor": ...}} for several (an account new to the checkpoint is
read from the start). A checkpoint without "tags" (written before tag metadata had its own
cursor, when it came from the first configured account) continues the tags from that account's
cursor.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
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
        {"name": "person", "type": _NULLABLE_STRING, "default": None},
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


@dataclass
class _State:
    """Where the reading of one account stands: its cursor and the reset already started over
    for (`reset_floor`)."""

    cursor: OverlapCursor
    floor: float | None = None


class TimeTaggerSource:
    """A Source over one TimeTagger account (`accounts` a client; `person` says whose) or several
    (`accounts` person → client); see the module doc for objects and semantics."""

    def __init__(
        self,
        name: str,
        accounts: TimeTaggerClient | Mapping[str, TimeTaggerClient],
        lag: float,
        *,
        person: str | None = None,
        tags_from: str | None = None,
    ) -> None:
        self.system = name
        self.lag = lag
        self.accounts: dict[str | None, TimeTaggerClient]
        self.several = not isinstance(accounts, TimeTaggerClient)
        if isinstance(accounts, TimeTaggerClient):
            self.accounts = {person: accounts}
        elif accounts and person is None:
            self.accounts = {who: client for who, client in accounts.items()}
        else:
            raise ValueError("give one client (and its person), or person → client")
        if tags_from is not None and (not self.several or tags_from not in self.accounts):
            raise ValueError(f"tags_from {tags_from!r} is not one of the accounts")
        self.tags_from = tags_from
        self.tags_person: str | None = tags_from or next(iter(self.accounts))
        """Whose account tag metadata is read from (the checkpoint's choice once read)."""

    def discover(self) -> list[ObjectSchema]:
        """`records` and `tags`, with fixed schemas."""
        return list(OBJECTS.values())

    def read(self, checkpoint: JSON | None, batch_size: int) -> Iterator[Batch]:
        """Changes after `checkpoint`, account by account, each in (st, key) order."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        states, tags = self._load(checkpoint)
        pending: list[Change] = []
        restarted = False
        passes: list[tuple[str | None, _State, bool, bool]] = [
            (person, states[person], True, not self.several) for person in self.accounts
        ]
        if tags is not None:  # several accounts: tag metadata from one, with its own cursor
            passes.append((self.tags_person, tags, False, True))
        for person, state, records, settings in passes:
            answer, restart = self._poll(self.accounts[person], state)
            restarted = restarted or restart
            for stamp, key, version, change in self._items(answer, person, records, settings):
                if not state.cursor.admit(key, version, stamp):
                    continue
                pending.append(change)
                if len(pending) >= batch_size:
                    yield Batch(tuple(pending), self._dump(states, tags))
                    pending = []
        if pending or restarted:
            yield Batch(tuple(pending), self._dump(states, tags))

    def current_keys(self, object: str) -> set[str]:
        """Live keys from a full read: records not hidden (every account), tags with metadata
        (the account tag metadata is read from: `tags_person`)."""
        if object not in OBJECTS:
            raise ConnectorError(
                f"connector {self.system!r} (timetagger) has no object {object!r}; "
                f"its objects are {sorted(OBJECTS)}"
            )
        if object == "tags":  # tag metadata: one account's
            tags = set()
            for setting in self.accounts[self.tags_person].updates(0.0).settings:
                tag = tag_of_setting(str(setting.get("key", "")))
                if tag is not None and not is_deleted_taginfo(setting.get("value")):
                    tags.add(tag)
            return tags
        keys: set[str] = set()
        for person, client in self.accounts.items():
            records = client.updates(0.0).records
            keys |= {
                self._key(person, str(r["key"]))
                for r in records
                if not is_hidden(str(r.get("ds", "")))
            }
        return keys

    def close(self) -> None:
        """Close the HTTP connection pools."""
        for client in self.accounts.values():
            client.close()

    # -- one account ----------------------------------------------------------------------------

    def _poll(self, client: TimeTaggerClient, state: _State) -> tuple[Updates, bool]:
        """The account's answer after its cursor, and whether it started over (a reset)."""
        since = state.cursor.since()
        answer = client.updates(0.0 if since is None else since)
        if not answer.reset:
            return answer, False
        if since is None:  # reading everything anyway: just remember the reset
            state.floor = answer.server_time
            return answer, False
        if (
            state.floor is not None
            and state.floor >= since
            and not client.updates(state.floor).reset
        ):
            return _newer_than(answer, since), False  # the reset we already started over for
        state.cursor, state.floor = OverlapCursor(lag=self.lag), answer.server_time
        return answer, True

    def _key(self, person: str | None, key: str) -> str:
        return f"{person}/{key}" if self.several else key

    def _items(self, answer: Updates, person: str | None, records: bool, tags: bool) -> list[_Item]:
        """(stamp, cursor key, version, change) of an answer's records and/or tag metadata;
        cursor keys are the account's."""
        items: list[_Item] = []
        for record in answer.records if records else []:
            stamp, version = _stamp(record)
            key = str(record.get("key"))
            change = _record_change(self._key(person, key), person, record)
            items.append((stamp, f"records/{key}", version, change))
        for setting in answer.settings if tags else []:
            tag = tag_of_setting(str(setting.get("key", "")))
            if tag is None:
                continue
            stamp, version = _stamp(setting)
            items.append((stamp, f"tags/{tag}", version, _tag_change(tag, setting)))
        items.sort(key=lambda item: (item[0], item[1]))
        return items

    # -- checkpoints ----------------------------------------------------------------------------

    def _load(self, checkpoint: JSON | None) -> tuple[dict[str | None, _State], _State | None]:
        """The state of each account, and of the tag metadata with several accounts (which
        also settles `tags_person`)."""
        first = next(iter(self.accounts))
        if checkpoint is None:
            self.tags_person = self.tags_from or first
            states = {person: _State(OverlapCursor(lag=self.lag)) for person in self.accounts}
            return states, _State(OverlapCursor(lag=self.lag)) if self.several else None
        try:
            if checkpoint["version"] != CHECKPOINT_VERSION:
                raise ValueError(f"version {checkpoint['version']!r}")
            if not self.several:
                return {person: self._state(checkpoint) for person in self.accounts}, None
            stored = checkpoint["accounts"]
            states = {
                person: self._state(stored[person])
                if person in stored
                else _State(OverlapCursor(lag=self.lag))
                for person in self.accounts
            }
            # Before "tags" existed, tag metadata came from the first configured account, on
            # that account's cursor.
            had = checkpoint.get("tags") or {"from": first, **stored.get(first, {})}
            was = had["from"]
            self.tags_person = self.tags_from or (was if was in self.accounts else first)
            if self.tags_person == was and "cursor" in had:
                return states, self._state(had)
            return states, _State(OverlapCursor(lag=self.lag))  # another account: from the start
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            shape = "several accounts (`accounts`)" if self.several else "one account (`token`)"
            raise ConnectorError(
                f"connector {self.system!r} (timetagger): the stored checkpoint is not a "
                f"timetagger checkpoint version {CHECKPOINT_VERSION} for {shape} ({e!r}); reset "
                "this connector's checkpoint to read everything again"
            ) from None

    def _state(self, stored: Mapping[str, Any]) -> _State:
        floor = stored.get("reset_floor")
        cursor = OverlapCursor.from_json(stored["cursor"], self.lag)
        return _State(cursor, None if floor is None else float(floor))

    def _dump(self, states: Mapping[str | None, _State], tags: _State | None) -> dict[str, Any]:
        if not self.several or tags is None:
            (state,) = states.values()
            return {"version": CHECKPOINT_VERSION, **_dump(state)}
        return {
            "version": CHECKPOINT_VERSION,
            "accounts": {str(person): _dump(state) for person, state in states.items()},
            "tags": {"from": self.tags_person, **_dump(tags)},
        }


def _dump(state: _State) -> dict[str, Any]:
    return {"cursor": state.cursor.to_json(), "reset_floor": state.floor}


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


def _record_change(key: str, person: str | None, item: dict[str, Any]) -> Change:
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
        "person": person,
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
