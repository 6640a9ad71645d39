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
  Delete → `status: "deleted"` (TimeTagger's app cannot read a null taginfo). A `people` field
  (a list of account names; not written) publishes the tag to those accounts only: the others
  get it deleted where they hold it (a consultant taken off a project loses its tag).

Outcomes: 429 / 5xx / network → `retryable` (with Retry-After); other 4xx and items TimeTagger
fails → `rejected` with its message; bad deltas → `rejected` saying what to fix.

Several accounts (person → client): a `records` delta goes to the account its target key names
(`alice/<record key>`), or for a create without one, the account its `person` field names (the
field is not written); outcomes carry `<person>/<record key>`. A `taginfo` delta is written to
every account (or, with `people`, as above): `applied` when every account holds what it should,
else `rejected` (if any account refused, or `people` names someone without an account) or
`retryable`, naming the accounts; a retry rewrites only where it is missing. With one account
a `person` field must be null or the configured person.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from connectors.timetagger.client import (
    TimeTaggerClient,
    TimeTaggerError,
    TimeTaggerRefused,
    TimeTaggerUnavailable,
)
from hub.spi import Delta, Outcome

__all__ = [
    "OBJECTS",
    "PEOPLE",
    "PERSON",
    "RECORD_FIELDS",
    "STALE",
    "TimeTaggerSink",
    "create_key_for",
    "record_key_for",
]


from connectors.timetagger.writes import (
    AFTER_RESET,
    OBJECTS,
    PEOPLE,
    PERSON,
    RECORD_FIELDS,
    STALE,
    Item,
    RecordsTable,
    Refusal,
    Table,
    TaginfoTable,
    create_key_for,
    item_mt,
    record_key_for,
)


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
        self.whole_record_objects = frozenset({"taginfo", "tags"})  # `people` fans a tag out
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
                try:
                    routed = self._fan_out(delta)
                except Refusal as e:
                    answers[key] = _rejected(delta, str(e))
                    continue
                everywhere.append(delta)
                for person, local in routed.items():
                    groups.setdefault((person, delta.object), []).append(local)
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

    def _fan_out(self, delta: Delta) -> dict[str | None, Delta]:
        """Account → the taginfo delta as written there: the delta itself, or with a `people`
        field, the delta without it for the people named and a delete for the others."""
        if PEOPLE not in delta.fields:
            return {person: delta for person in self.writers}
        fields = dict(delta.fields)
        people = fields.pop(PEOPLE)
        if people is None:
            people = []
        if not isinstance(people, list) or not all(isinstance(p, str) for p in people):
            raise Refusal(
                f"{delta.canonical_id}: `{PEOPLE}` must be a list of account names (person "
                f"handles), got {people!r}: map it with e.g. `values_of Assignment ... | id_part`"
            )
        named = set(people)
        return {
            person: replace(
                delta,
                fields=fields,
                op=delta.op if person in named or delta.op == "delete" else "delete",
            )
            for person in self.writers
        }

    def _everywhere(self, delta: Delta, outcomes: Mapping[str | None, Outcome]) -> Outcome:
        """One outcome for a delta written to every account (person → its outcome there)."""
        unknown = sorted(set(delta.fields.get(PEOPLE) or ()) - {str(p) for p in self.writers})
        if unknown and delta.op != "delete":
            return _rejected(
                delta,
                f"no TimeTagger account for {unknown} of `{PEOPLE}` (the others hold the tag): "
                "add their API tokens under the tracker connector's `accounts`, or end their "
                "assignment",
            )
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
        self._tables: dict[str, Table] = {
            "records": RecordsTable(client),
            "taginfo": TaginfoTable(client),
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
        table: Table,
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
            item["mt"] = now if held is None else item_mt(held) + 1
        try:
            result, put_keys = table.put(list(work.values()))
            failed = {put_keys[k]: error for k, error in result.failed.items() if k in put_keys}
            # An item older than the account's last reset is refused: rewrite it stamped now.
            again = [k for k, error in failed.items() if AFTER_RESET in error]
            if again:
                for key in again:
                    work[key]["mt"] = max(now, item_mt(current.get(key)) + 1)
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
