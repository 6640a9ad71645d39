"""How each TimeTagger object is planned, checked and verified by the sink (sink.py): the
`records` table (time records: t1, t2, ds and #tag edits) and the `taginfo` table (per-tag
metadata settings), the keys creates use, and the refusals of deltas that cannot be written."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, Protocol

from connectors.timetagger.client import (
    PutResult,
    TimeTaggerClient,
)
from connectors.timetagger.source import TAGINFO, is_deleted_taginfo, tag_of_setting
from connectors.timetagger.tags import (
    ELLIPSIS,
    MAX_DS,
    add_tags,
    fit,
    hide,
    is_hidden,
    normalize_tag,
    remove_tags,
)
from hub.spi import Delta

__all__ = [
    "AFTER_RESET",
    "OBJECTS",
    "PEOPLE",
    "PERSON",
    "RECORD_FIELDS",
    "STALE",
    "Item",
    "RecordsTable",
    "Refusal",
    "Table",
    "TaginfoTable",
    "create_key_for",
    "item_mt",
    "record_key_for",
]


OBJECTS = ["records", "taginfo", "tags"]

RECORD_FIELDS = ("t1", "t2", "ds", "add_tags", "remove_tags")
PERSON = "person"
"""The records field naming whose account a record is in (routing only: it is not written)."""
PEOPLE = "people"
"""The taginfo field naming the accounts a tag is published to (routing only: not written)."""
STALE = "stale write: TimeTagger kept a newer version"
SYNCHUB_KEY = "synchub_key"
AFTER_RESET = "modified after a reset"
"""TimeTagger's error for an item whose mt is older than the account's last reset."""

Item = dict[str, Any]


class Refusal(ValueError):
    """A delta that cannot be written as it is; the message says why and what to fix."""


def record_key_for(idempotency_key: str) -> str:
    """The key of the record a create made before synchub 2026-11 (a function of its idempotency
    key); still looked up, so a retry of such a create finds its record."""
    return "sh" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:16]


def create_key_for(delta: Delta) -> str:
    """The key of the record a create makes: one per target record (object, canonical id),
    whatever the fields and the idempotency key of the attempt. TimeTagger record keys are
    chosen by the client and never edited, so a later create of the same entity (after an
    answer was lost) finds the record even if a person edited it meanwhile."""
    return record_key_for(f"{delta.object}\x1f{delta.canonical_id}")


class Table(Protocol):
    """How one object is read, changed and checked; `apply` does the rest for every object."""

    noun: str
    notes: dict[str, str]
    """Per key, what an applied write of it did beyond the deltas (the outcome's reason)."""

    def read(self) -> tuple[dict[str, Item], float | None]: ...

    def reread(self, since: float | None) -> dict[str, Item]: ...

    def target_key(self, delta: Delta, current: Mapping[str, Item]) -> str: ...

    def plan(self, delta: Delta, key: str, current: Item | None) -> Item | None: ...

    def put(self, items: list[Item]) -> tuple[PutResult, dict[str, str]]: ...

    def holds(self, kept: Item, ours: Item) -> bool: ...


def item_mt(item: Item | None) -> int:
    """The client modification time of the version TimeTagger holds (-1: none)."""
    mt = None if item is None else item.get("mt")
    if isinstance(mt, bool) or not isinstance(mt, int | float) or mt != mt:
        return -1
    return int(mt)


# -- records -----------------------------------------------------------------------------------


class RecordsTable:
    """Time records: keyed by the record key; compared on t1, t2, ds and mt."""

    noun = "record"

    def __init__(self, client: TimeTaggerClient) -> None:
        self.client = client
        self.notes: dict[str, str] = {}

    def read(self) -> tuple[dict[str, Item], float | None]:
        self.notes = {}  # one apply's
        answer = self.client.updates(0.0)
        return {str(r["key"]): r for r in answer.records}, answer.server_time

    def reread(self, since: float | None) -> dict[str, Item]:
        return {str(r["key"]): r for r in self.client.updates(since or 0.0).records}

    def target_key(self, delta: Delta, current: Mapping[str, Item]) -> str:
        if delta.target_key is not None:
            return delta.target_key
        if delta.op == "create":
            legacy = record_key_for(delta.idempotency_key)
            return legacy if legacy in current else create_key_for(delta)
        raise Refusal(
            f"cannot {delta.op} {delta.canonical_id} in TimeTagger: the delta has no target_key "
            "(the record key), so the record is unknown"
        )

    def plan(self, delta: Delta, key: str, current: Item | None) -> Item | None:
        unknown = sorted(set(delta.fields) - set(RECORD_FIELDS))
        if unknown:
            raise Refusal(
                f"TimeTagger records have no fields {unknown}: map to {list(RECORD_FIELDS)} "
                "(project, billable, approval... are #tags in `ds`)"
            )
        if delta.op == "delete":
            if current is None or is_hidden(str(current.get("ds", ""))):
                return None
            return {**_core(current), "ds": hide(str(current.get("ds", "")))}
        hidden = current is not None and is_hidden(str(current.get("ds", "")))
        if current is None and delta.op != "create":
            raise Refusal(f"record {key!r} does not exist in TimeTagger (cannot {delta.op} it)")
        if hidden and delta.op != "create":
            raise Refusal(f"record {key!r} is deleted (hidden) in TimeTagger: not updating it")
        # A create that finds its record (an earlier attempt landed, its answer was lost)
        # converges it to this create's fields; a hidden one is made again from them.
        fresh = current is None or hidden
        base = {"key": key, "ds": ""} if fresh else _core(current or {})
        new = dict(base)
        for name in ("t1", "t2", "ds"):
            if name in delta.fields:
                new[name] = delta.fields[name]
        untagged = new.get("ds")
        new["ds"] = _edit_tags(untagged, delta.fields)
        # An update checks only what it changes: a tag edit (the hub's #sync-error flag) must
        # reach a record whose times TimeTagger holds but a create would refuse (t2 < t1).
        _check_record(new, _WRITTEN if fresh else _changed(delta.fields))
        if (
            "add_tags" in delta.fields
            and isinstance(untagged, str)
            and len(untagged) < MAX_DS <= len(new["ds"])
        ):
            new["ds"] = self._fit(key, untagged, new["ds"])
        return None if not fresh and new == base else new

    def _fit(self, key: str, untagged: str, tagged: str) -> str:
        """The description with the added tags, its free text cut to fit TimeTagger's limit
        (every #tag kept); `notes` says so, for the outcome."""
        try:
            cut = fit(tagged)
        except ValueError as e:
            raise Refusal(f"cannot add the tags to record {key!r}: {e}") from None
        self.notes[key] = (
            f"the description was shortened to fit TimeTagger's limit of {MAX_DS - 1} "
            f"characters: with the tags added it had {len(tagged)}, so its free text was cut "
            f"(it ends in '{ELLIPSIS}'); every #tag kept"
        )
        return cut

    def put(self, items: list[Item]) -> tuple[PutResult, dict[str, str]]:
        return self.client.put_records(items), {item["key"]: item["key"] for item in items}

    def holds(self, kept: Item, ours: Item) -> bool:
        return all(kept.get(name) == ours.get(name) for name in ("mt", "t1", "t2", "ds"))


def _core(record: Mapping[str, Any]) -> Item:
    """The fields a record is written with (mt is set at write time)."""
    return {name: record.get(name) for name in ("key", "t1", "t2", "ds")}


def _edit_tags(ds: Any, fields: Mapping[str, Any]) -> Any:
    if not isinstance(ds, str):
        return ds
    try:
        if "add_tags" in fields:
            ds = add_tags(ds, _tag_list(fields["add_tags"], "add_tags"))
        if "remove_tags" in fields:
            ds = remove_tags(ds, _tag_list(fields["remove_tags"], "remove_tags"))
    except ValueError as e:
        raise Refusal(str(e)) from None
    return ds


def _tag_list(value: Any, name: str) -> list[str]:
    """A list of tags, or a string of tags separated by spaces or commas."""
    if isinstance(value, str):
        return [t for t in value.replace(",", " ").split() if t]
    if isinstance(value, list | tuple) and all(isinstance(t, str) for t in value):
        return list(value)
    raise Refusal(f"`{name}` must be a list of tags or a string of tags, got {value!r}")


_WRITTEN = frozenset({"t1", "t2", "ds"})
"""The record fields a create (or the revival of a hidden record) writes."""


def _changed(fields: Mapping[str, Any]) -> frozenset[str]:
    """The record fields an update's delta changes (tag edits change `ds`)."""
    names = {name for name in ("t1", "t2", "ds") if name in fields}
    if "add_tags" in fields or "remove_tags" in fields:
        names.add("ds")
    return frozenset(names)


def _check_record(record: Item, changed: frozenset[str] = _WRITTEN) -> None:
    """Of the `changed` fields: t1 and t2 whole unix seconds with t1 <= t2, ds a string
    (TimeTagger judges its length). Fields left as TimeTagger holds them are not judged."""
    for name in ("t1", "t2"):
        if name not in changed:
            continue
        value = record.get(name)
        if isinstance(value, float) and value.is_integer():
            record[name] = value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise Refusal(
                f"`{name}` must be whole unix seconds (an integer), got {value!r}"
                + ("; a create needs t1 and t2" if value is None else "")
            )
    t1, t2 = record.get("t1"), record.get("t2")
    if changed & {"t1", "t2"} and isinstance(t1, int) and isinstance(t2, int) and t1 > t2:
        raise Refusal(f"t1 ({t1}) is after t2 ({t2}): a record ends after it starts")
    if "ds" in changed and not isinstance(record.get("ds"), str):
        raise Refusal(f"`ds` (the description) must be text, got {record.get('ds')!r}")


# -- taginfo ------------------------------------------------------------------------------------


class TaginfoTable:
    """Settings "taginfo #<tag>": keyed by the tag; compared on value and mt."""

    noun = "taginfo"

    def __init__(self, client: TimeTaggerClient) -> None:
        self.client = client
        self.notes: dict[str, str] = {}

    def read(self) -> tuple[dict[str, Item], float | None]:
        return self.reread(None), None

    def reread(self, since: float | None) -> dict[str, Item]:
        found = {}
        for setting in self.client.settings():
            tag = tag_of_setting(str(setting.get("key", "")))
            if tag is not None:
                found[tag] = setting
        return found

    def target_key(self, delta: Delta, current: Mapping[str, Item]) -> str:
        raw = delta.target_key or delta.fields.get("tag") or delta.canonical_id.split("/", 1)[-1]
        try:
            return " ".join(normalize_tag(tag) for tag in str(raw).split())
        except ValueError as e:
            raise Refusal(f"{e} ({delta.canonical_id})") from None

    def plan(self, delta: Delta, key: str, current: Item | None) -> Item | None:
        fields = {k: v for k, v in delta.fields.items() if k != "tag"}
        if SYNCHUB_KEY in fields:
            raise Refusal(f"field {SYNCHUB_KEY!r} is synchub's own: rename it in the mapping")
        for name, value in fields.items():
            _check_json(name, value)
        value = current.get("value") if current is not None else None
        base: Item = dict(value) if isinstance(value, dict) else {}
        if base.get(SYNCHUB_KEY) == delta.idempotency_key:
            return None
        deleted = current is None or is_deleted_taginfo(value)
        if delta.op == "delete":
            if deleted:
                return None
            new = {**base, "status": "deleted"}
        else:
            if deleted:
                base.pop("status", None)
            elif all(base.get(k) == v for k, v in fields.items()):
                return None
            new = {**base, **fields}
        new[SYNCHUB_KEY] = delta.idempotency_key
        return {"key": key, "value": new}

    def put(self, items: list[Item]) -> tuple[PutResult, dict[str, str]]:
        settings = [
            {
                "key": TAGINFO + " ".join(f"#{t}" for t in item["key"].split()),
                "value": item["value"],
                "mt": item["mt"],
            }
            for item in items
        ]
        names = {s["key"]: item["key"] for s, item in zip(settings, items, strict=True)}
        return self.client.put_settings(settings), names

    def holds(self, kept: Item, ours: Item) -> bool:
        return bool(kept.get("mt") == ours["mt"] and kept.get("value") == ours["value"])


def _check_json(name: str, value: Any) -> None:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        raise Refusal(
            f"field {name!r} ({value!r}) cannot be stored in TimeTagger's JSON settings: "
            "map it to text or a finite number"
        ) from None
