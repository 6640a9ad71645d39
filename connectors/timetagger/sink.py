"""TimeTagger sink: writes time records and per-tag metadata, and verifies every write, into one
account or several (one per person).

TimeTagger keeps, per key, the version with the larger client `mt` (a tie goes to the later
write), and answers "accepted" even when it kept the other one; it has no conditional write. So
each `apply` reads the current state once, merges each delta into it, PUTs the changed items with
`mt` = the current one + 1 (the smallest that wins over what was read), then reads them back: an
item the server did not keep as written is `retryable` ("stale write: TimeTagger kept a newer
version"). A person's edit between the read and the write carries their clock's time, later than
the version read, so it wins and the read-back reports our write stale: it is not overwritten
behind a false `applied`. Left open: an edit stamped no later than the read version's mt + 1
(within the same second, or a clock behind) loses to ours undetected. After an account reset,
an item older than the reset is refused by TimeTagger and rewritten once stamped now.

Objects and ops:
- `records` (fields `t1`, `t2`, `ds`; `add_tags` / `remove_tags` edit #tags in `ds`):
  create → a new record whose key is derived from the object and canonical id (`create_key_for`):
  a retry, or a later create of the same entity after an answer was lost, finds the record and
  converges it to the create's fields instead of creating a second one (a hidden one is made
  again from them); a record made by an older version under a key derived from the idempotency
  key is found too. update → merged into the current record, checking only what it changes (a
  tag edit, the hub's #sync-error flag, reaches a record whose t2 < t1); delete → soft delete
  (description prefixed "HIDDEN"). Idempotency is by state: a record that already holds the
  fields is `applied` without a write. Tags added to a description that fits but would not fit
  with them (TimeTagger's limit: 255 characters) cut its free text, never a tag (`tags.fit`);
  the `applied` outcome's reason says the description was shortened.
- `taginfo` (alias `tags`): the setting "taginfo #<tag>", a JSON object; the delta's fields are
  merged into it along with `synchub_key` = the idempotency key, which marks it as applied.
  Delete → `status: "deleted"` (TimeTagger's app cannot read a null taginfo).

Outcomes: 429 / 5xx / network → `retryable` (with Retry-After); other 4xx and items TimeTagger
fails → `rejected` with its message; bad deltas → `rejected` saying what to fix.

Several accounts (person → client): a `records` delta goes to the account its target key names
(`alice/<record key>`), or for a create without one, the account its `person` field names (the
field is not written); outcomes carry `<person>/<record key>`. A `taginfo` delta is written to
every account: `applied` when every account holds it, else `rejected` (if any account refused)
or `retryable`, naming the accounts; a retry rewrites only where it is missing. With one account
a `person` field must be null or the configured person.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Protocol

from connectors.timetagger.client import (
    PutResult,
    TimeTaggerClient,
    TimeTaggerError,
    TimeTaggerRefused,
    TimeTaggerUnavailable,
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
from hub.spi import Delta, Outcome

__all__ = [
    "OBJECTS",
    "PERSON",
    "RECORD_FIELDS",
    "STALE",
    "TimeTaggerSink",
    "create_key_for",
    "record_key_for",
]

OBJECTS = ["records", "taginfo", "tags"]

RECORD_FIELDS = ("t1", "t2", "ds", "add_tags", "remove_tags")
PERSON = "person"
"""The records field naming whose account a record is in (routing only: it is not written)."""
STALE = "stale write: TimeTagger kept a newer version"
SYNCHUB_KEY = "synchub_key"
_AFTER_RESET = "modified after a reset"
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


class _Table(Protocol):
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


class TimeTaggerSink:
    """A Sink into one TimeTagger account (`accounts` a client; `person` says whose) or several
    (`accounts` person → client); `writes` counts items really written and verified."""

    def __init__(
        self,
        name: str,
        accounts: TimeTaggerClient | Mapping[str, TimeTaggerClient],
        clock: Callable[[], float] = time.time,
        *,
        person: str | None = None,
    ) -> None:
        self.system = name
        self.person = person
        self.several = not isinstance(accounts, TimeTaggerClient)
        self.writers: dict[str | None, _Writer]
        if isinstance(accounts, TimeTaggerClient):
            self.writers = {person: _Writer(accounts, clock)}
        elif accounts and person is None:
            self.writers = {who: _Writer(client, clock) for who, client in accounts.items()}
        else:
            raise ValueError("give one client (and its person), or person → client")

    @property
    def writes(self) -> int:
        """Items written and verified, in all accounts."""
        return sum(writer.writes for writer in self.writers.values())

    def apply(self, deltas: Sequence[Delta]) -> list[Outcome]:
        """One Outcome per delta, in order; a key repeated in the call is handled once."""
        unique: dict[str, Delta] = {}
        for delta in deltas:
            unique.setdefault(delta.idempotency_key, delta)
        answers: dict[str, Outcome] = {}
        groups: dict[tuple[str | None, str], list[Delta]] = {}  # (person, object) → deltas
        everywhere: list[Delta] = []  # taginfo: written to every account
        for key, delta in unique.items():
            if delta.object not in OBJECTS:
                answers[key] = _rejected(
                    delta,
                    f"TimeTagger has no object {delta.object!r} to write; use one of {OBJECTS}",
                )
            elif delta.object == "records":
                try:
                    person, local = self._route(delta)
                except Refusal as e:
                    answers[key] = _rejected(delta, str(e))
                    continue
                groups.setdefault((person, delta.object), []).append(local)
            else:
                everywhere.append(delta)
                for person in self.writers:
                    groups.setdefault((person, delta.object), []).append(delta)
        results: dict[str | None, dict[str, Outcome]] = {person: {} for person in self.writers}
        for (person, obj), group in groups.items():
            results[person].update(self.writers[person].apply(obj, group))
        for person, outcomes in results.items():
            for key, outcome in outcomes.items():
                if unique[key].object != "records":
                    continue
                if self.several and outcome.target_key is not None:
                    outcome = replace(outcome, target_key=f"{person}/{outcome.target_key}")
                answers[key] = outcome
        for delta in everywhere:
            key = delta.idempotency_key
            answers[key] = self._everywhere(delta, {p: r[key] for p, r in results.items()})
        return [answers[d.idempotency_key] for d in deltas]

    def close(self) -> None:
        """Close the HTTP connection pools."""
        for writer in self.writers.values():
            writer.client.close()

    def _everywhere(self, delta: Delta, outcomes: Mapping[str | None, Outcome]) -> Outcome:
        """One outcome for a delta written to every account (person → its outcome there)."""
        if not self.several:
            return outcomes[self.person]
        details = {str(person): dict(o.details) for person, o in outcomes.items()}
        missed = {str(person): o for person, o in outcomes.items() if o.status != "applied"}
        if not missed:
            first = next(iter(outcomes.values()))
            return Outcome(
                delta.idempotency_key, "applied", first.target_key, details={"accounts": details}
            )
        reason = "; ".join(f"account {person!r}: {o.reason}" for person, o in missed.items())
        done = sorted(set(details) - set(missed))
        if done:
            reason += f" (applied to {done}; a retry writes only where it is missing)"
        waits = [o.retry_after for o in missed.values() if o.retry_after is not None]
        return Outcome(
            delta.idempotency_key,
            "rejected" if any(o.status == "rejected" for o in missed.values()) else "retryable",
            reason=reason,
            retry_after=max(waits) if waits else None,
            details={"accounts": details},
        )

    def _route(self, delta: Delta) -> tuple[str | None, Delta]:
        """The account of a records delta, and the delta as that account sees it (its own record
        key, no `person` field)."""
        fields = dict(delta.fields)
        named = fields.pop(PERSON, None)
        if not self.several:
            if named is not None and named != self.person:
                whose = repr(self.person) if self.person else "one person (no `person` option)"
                raise Refusal(
                    f"{delta.canonical_id} is for person {named!r}, but this connector writes only "
                    f"the TimeTagger account of {whose}: use `accounts` for several people"
                )
            return self.person, replace(delta, fields=fields)
        people = sorted(str(p) for p in self.writers)
        key = delta.target_key
        if key is not None:
            person, slash, key = key.partition("/")
            if not slash or person not in self.writers:
                raise Refusal(
                    f"target_key {delta.target_key!r} names no account of this connector: "
                    f"expected '<person>/<record key>' with a person of {people}"
                )
            if named is not None and named != person:
                raise Refusal(
                    f"{delta.canonical_id} is in the TimeTagger account of {person!r} but its "
                    f"{PERSON} is {named!r}: a record cannot move between accounts"
                )
        elif named is None:
            raise Refusal(
                f"cannot {delta.op} {delta.canonical_id}: this connector writes several "
                f"TimeTagger accounts ({people}) and the delta names none: map a `{PERSON}` "
                "field (or give a target_key '<person>/<record key>')"
            )
        elif named not in self.writers:
            raise Refusal(
                f"{delta.canonical_id} is for person {named!r}, who has no TimeTagger account "
                f"in this connector (its accounts: {people})"
            )
        else:
            person = named
        return person, replace(delta, target_key=key, fields=fields)


class _Writer:
    """Writes into one account; `writes` counts items really written and verified."""

    def __init__(self, client: TimeTaggerClient, clock: Callable[[], float]) -> None:
        self.client = client
        self.clock = clock
        self.writes = 0
        self._tables: dict[str, _Table] = {
            "records": _Records(client),
            "taginfo": _Taginfo(client),
        }
        self._tables["tags"] = self._tables["taginfo"]

    def apply(self, obj: str, deltas: list[Delta]) -> dict[str, Outcome]:
        """Outcomes by idempotency key of `deltas`, all of object `obj`."""
        table = self._tables[obj]
        try:
            current, since = table.read()
        except TimeTaggerError as e:
            return {d.idempotency_key: _failed(d, e) for d in deltas}
        answers: dict[str, Outcome] = {}
        work: dict[str, Item] = {}
        waiting: dict[str, list[Delta]] = {}  # target key → deltas answered by its write
        for delta in deltas:
            try:
                key = table.target_key(delta, {**current, **work})
                before = work.get(key, current.get(key))
                item = table.plan(delta, key, before)
            except Refusal as e:
                answers[delta.idempotency_key] = _rejected(delta, str(e))
                continue
            if item is not None:
                work[key] = item
            if key in work:
                waiting.setdefault(key, []).append(delta)
            else:
                answers[delta.idempotency_key] = Outcome(
                    delta.idempotency_key, "applied", target_key=key, details={"written": False}
                )
        if work:
            answers.update(self._write(table, current, since, work, waiting))
        return answers

    def _write(
        self,
        table: _Table,
        current: dict[str, Item],
        since: float | None,
        work: dict[str, Item],
        waiting: dict[str, list[Delta]],
    ) -> dict[str, Outcome]:
        # The smallest mt that wins over the version read: a person's edit after the read
        # (stamped with their clock, later than that version) then wins over ours, and the
        # read-back reports our write stale instead of "applied" over a lost edit. A new item
        # (nothing to lose) gets now; not below a reset in this second: TimeTagger refuses.
        now = math.ceil(self.clock())
        for key, item in work.items():
            held = current.get(key)
            item["mt"] = now if held is None else _mt(held) + 1
        try:
            result, put_keys = table.put(list(work.values()))
            failed = {put_keys[k]: error for k, error in result.failed.items() if k in put_keys}
            # An item older than the account's last reset is refused: rewrite it stamped now.
            again = [k for k, error in failed.items() if _AFTER_RESET in error]
            if again:
                for key in again:
                    work[key]["mt"] = max(now, _mt(current.get(key)) + 1)
                    del failed[key]
                result, put_keys = table.put([work[key] for key in again])
                failed.update(
                    (put_keys[k], error) for k, error in result.failed.items() if k in put_keys
                )
        except TimeTaggerError as e:
            return {d.idempotency_key: _failed(d, e) for ds in waiting.values() for d in ds}
        unverified: str | None = None
        try:
            kept = table.reread(since) if len(failed) < len(work) else {}
        except TimeTaggerError as e:
            kept, unverified = {}, f"wrote to TimeTagger but could not read it back: {e}"
        answers: dict[str, Outcome] = {}
        for key, ours in work.items():
            if key in failed:
                reason = f"TimeTagger refused {table.noun} {key!r}: {failed[key]}"
                outcome = [_rejected(d, reason) for d in waiting[key]]
            elif unverified is not None:
                outcome = [_retryable(d, unverified) for d in waiting[key]]
            elif key in kept and table.holds(kept[key], ours):
                self.writes += 1
                details = {"written": True, "mt": ours["mt"], "st": kept[key].get("st")}
                note = table.notes.get(key)
                outcome = [
                    Outcome(
                        d.idempotency_key, "applied", target_key=key, reason=note, details=details
                    )
                    for d in waiting[key]
                ]
            else:
                theirs = kept.get(key, {})
                details = {"our_mt": ours["mt"], "kept_mt": theirs.get("mt")}
                outcome = [_retryable(d, STALE, details) for d in waiting[key]]
            answers.update((o.idempotency_key, o) for o in outcome)
        return answers


def _mt(item: Item | None) -> int:
    """The client modification time of the version TimeTagger holds (-1: none)."""
    mt = None if item is None else item.get("mt")
    if isinstance(mt, bool) or not isinstance(mt, int | float) or mt != mt:
        return -1
    return int(mt)


# -- records -----------------------------------------------------------------------------------


class _Records:
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


class _Taginfo:
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


# -- outcomes -----------------------------------------------------------------------------------


def _rejected(delta: Delta, reason: str) -> Outcome:
    return Outcome(delta.idempotency_key, "rejected", reason=reason)


def _retryable(delta: Delta, reason: str, details: Mapping[str, Any] | None = None) -> Outcome:
    return Outcome(delta.idempotency_key, "retryable", reason=reason, details=dict(details or {}))


def _failed(delta: Delta, error: TimeTaggerError) -> Outcome:
    """A failed call: refused (4xx) → rejected with TimeTagger's words; else → retryable."""
    if isinstance(error, TimeTaggerRefused):
        return _rejected(delta, f"TimeTagger refused: {error.status} {error.server_message}")
    retry_after = error.retry_after if isinstance(error, TimeTaggerUnavailable) else None
    return Outcome(delta.idempotency_key, "retryable", reason=str(error), retry_after=retry_after)
