"""The planner: for each changed canonical entity and each target, the minimal delta.

desired = the outbound rule applied to the canonical state;
known   = the target's own captured record (if the target is also a source and the record is
          linked), else what we last applied;
delta   = desired fields that differ from known, minus fields the target owns.

Echo suppression falls out: once our write comes back through the target's source, known
equals desired and nothing is planned. Idempotency key = hash(target, canonical id, desired).
Planning is idempotent: an identical delta that is already pending, applied or failed is not
planned again, so re-running after a crash appends nothing twice.

One write per target record at a time: while a delta is in flight (pending or retrying; its
outcome may be unknown after a crash or a timeout), a newer state of the entity waits and is
planned once that delta is applied or failed. Otherwise a create could be sent twice under two
keys, or an in-flight write would land after, and over, the state that superseded it.

Exceptions of kind `plan` are re-examined whenever the canonical state changed (a refusal often
depends on another entity: the task is reopened, the employee created) or an operator retries
them; one whose entity no longer goes to the target, or a `write` exception whose entity needs
no write any more, is resolved by the planner (an ExceptionAction by `synchub`).
"""

from __future__ import annotations

import collections.abc
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from hub.crashpoints import crashpoint
from hub.errors import MappingError
from hub.ingest import now_micros
from hub.mapping import Mapping, OutboundRule
from hub.schemas import hub_schema
from hub.spi import ReadsBack, same_value
from hub.store.base import Cursor, NewEvent
from hub.store.sqlite import SQLiteEventStore
from hub.values import dumps, to_json
from projections.exceptions import NOW_MAPS, exception_id, plan_failure_text
from projections.links import linked_elsewhere

PLANNED = "DeltaPlanned"
PLAN_FAILED = "PlanFailed"
ACTION = "ExceptionAction"
IN_FLIGHT = ("pending", "retrying")


def outbound_stream(target: str, obj: str, canonical_id: str) -> str:
    return f"outbound/{target}/{obj}/{canonical_id}"


def idempotency_key(
    target: str, canonical_id: str, op: str, desired: Any, previous: str = ""
) -> str:
    """hash(target, canonical id, op, desired state, the previous delta's key)."""
    text = f"{target}\x1f{canonical_id}\x1f{op}\x1f{dumps(desired)}\x1f{previous}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def minimal_delta(
    desired: dict[str, Any], known: dict[str, Any] | None, owned_by_target: set[str]
) -> dict[str, Any]:
    """The fields to write: desired values that differ from what the target is known to hold,
    never a field the target owns. With nothing known, every desired field not owned."""
    if known is None:
        return {f: v for f, v in desired.items() if f not in owned_by_target}
    return {
        f: v
        for f, v in desired.items()
        if f not in owned_by_target and (f not in known or not same_value(known[f], v))
    }


@dataclass
class PlannerReport:
    examined: int = 0
    planned: int = 0
    failed: int = 0
    unchanged: int = 0
    resolved: int = 0
    """Exceptions the planner resolved because their entity needs no write any more."""
    by_target: dict[str, int] = field(default_factory=dict)


class _TableLookup:
    """The mapping Lookup over the live projection tables (read-only)."""

    def __init__(self, c: Cursor) -> None:
        self.c = c

    def canonical_id(self, entity: str, system: str, object: str, key: str) -> str | None:
        cid = self.linked(system, object, key)
        if cid is None or cid.startswith(entity + "/"):
            return cid
        raise linked_elsewhere(entity, system, object, str(key), cid)

    def linked(self, system: str, object: str, key: str) -> str | None:
        """The canonical id record system/object/key is linked to, of whatever entity."""
        self.c.execute(
            "SELECT canonical_id FROM p_links WHERE system=? AND object=? AND key=?",
            (system, object, str(key)),
        )
        r = self.c.fetchone()
        return None if r is None else str(r[0])

    def linked_as(self, entity: str, system: str, object: str, key: str) -> str | None:
        """The `entity` record system/object/key is linked to; None if none (or another kind)."""
        cid = self.linked(system, object, key)
        return cid if cid is not None and cid.startswith(entity + "/") else None

    def canonical_field(self, canonical_id: str, field: str) -> Any:
        self.c.execute(
            "SELECT fields, deleted FROM p_canonical WHERE canonical_id=?", (canonical_id,)
        )
        r = self.c.fetchone()
        if r is None or r[1]:
            return None
        fields = json.loads(r[0])
        return fields if field == "*" else fields.get(field)

    def target_key(self, system: str, canonical_id: str) -> str | None:
        self.c.execute(
            "SELECT key FROM p_links WHERE canonical_id=? AND system=? ORDER BY object, key LIMIT 1",
            (canonical_id, system),
        )
        r = self.c.fetchone()
        return None if r is None else str(r[0])


class Planner:
    """Appends DeltaPlanned (and PlanFailed) events for canonical changes. Run after catch-up."""

    def __init__(
        self,
        store: SQLiteEventStore,
        targets: set[str] | None = None,
        readers: collections.abc.Mapping[str, ReadsBack] | None = None,
    ) -> None:
        """`readers`: per target system, the sink that reads its captured records back in the
        fields it writes (see hub.spi.ReadsBack); without one, a target is known by what was
        last applied to it."""
        self.store = store
        self.targets = targets
        self.readers = dict(readers or {})
        self._planned = hub_schema("delta_planned")
        self._failed = hub_schema("plan_failed")
        self._action = hub_schema("exception_action")
        store.codec.add(self._planned)
        store.codec.add(self._failed)
        store.codec.add(self._action)

    def plan(self, mapping: Mapping | None) -> PlannerReport:
        """Plan deltas for canonical rows changed since the last plan under this mapping version."""
        report = PlannerReport()
        if mapping is None:
            return report
        name = f"planner@v{mapping.version}"
        since = self.store.db.tracked(name)
        events: list[NewEvent] = []
        versions: dict[str, int] = {}
        high = since
        with self.store.db.transaction(commit=False) as c:
            lookup = _TableLookup(c)
            c.execute(
                "SELECT canonical_id, entity, natural_id, fields, deleted, position FROM p_canonical"
                " WHERE position > ? ORDER BY position, canonical_id",
                (since,),
            )
            rows = list(c.fetchall())
            # Target records that changed at the target (drift, or our own echo): re-examine
            # the entities they are linked to, so the system of record's state is restored.
            c.execute(
                "SELECT DISTINCT l.canonical_id, r.position FROM p_source_records r JOIN p_links l"
                " ON l.system = r.system AND l.object = r.object AND l.key = r.key"
                " WHERE r.position > ? AND l.role = 'target' ORDER BY r.position, l.canonical_id",
                (since,),
            )
            again = list(c.fetchall())
            # Writes that settled (applied or failed): a newer state may have waited for them.
            c.execute(
                "SELECT canonical_id, position FROM p_outbound WHERE position > ?"
                " AND status IN ('applied','failed') ORDER BY position, canonical_id",
                (since,),
            )
            again += c.fetchall()
            # Open plan exceptions: re-checked when anything changed, or on an operator's retry.
            c.execute(
                "SELECT canonical_id, status FROM p_exceptions WHERE kind='plan'"
                " AND status IN ('open','retrying') ORDER BY id"
            )
            recheck = [(cid, 0) for cid, status in c.fetchall() if rows or status == "retrying"]
            seen = {r[0] for r in rows}
            for cid, position in again + recheck:
                high = max(high, position)
                if cid in seen:
                    continue
                seen.add(cid)
                c.execute(
                    "SELECT canonical_id, entity, natural_id, fields, deleted, position FROM p_canonical"
                    " WHERE canonical_id=?",
                    (cid,),
                )
                rows.extend(c.fetchall())
            for cid, entity, natural_id, fields_json, deleted, position in rows:
                high = max(high, position)
                report.examined += 1
                fields = json.loads(fields_json)
                for rule in mapping.outbound(entity):
                    if self.targets is not None and rule.system not in self.targets:
                        continue
                    planned_events = self._plan_one(
                        c, lookup, mapping, rule, cid, natural_id, fields, bool(deleted)
                    )
                    if not planned_events:
                        report.unchanged += 1
                        continue
                    self._collect(planned_events, events, versions, report)
            # Records that could not even be mapped (e.g. a malformed #tag) are invalid entries
            # too: flag them at their source where a rule asks for feedback from it, under the
            # canonical id they will map to (see _flag_id), so the same rule removes the flag
            # once the record maps and passes its checks; a flag left under another id (the id
            # itself did not map) is removed once the record maps again.
            for flagged in self._unmappable(c, lookup, mapping, since):
                high = max(high, flagged[0])
                self._collect(flagged[1], events, versions, report)
            for unflagged in self._mapped_again(c, lookup, mapping, since):
                high = max(high, unflagged[0])
                self._collect(unflagged[1], events, versions, report)
        if events:
            self.store.append(events)
            crashpoint("planner.after_append")
        if high > since:
            with self.store.db.transaction(commit=True) as c:
                self.store.db.track(c, name, high)
        return report

    def _collect(
        self,
        planned: list[tuple[str, str, bytes]],
        events: list[NewEvent],
        versions: dict[str, int],
        report: PlannerReport,
    ) -> None:
        """Number planned events in their streams and count them in the report."""
        for stream, type_, payload in planned:
            version = versions.get(stream)
            if version is None:
                last = self.store.last(stream)
                version = 0 if last is None else last.version
            versions[stream] = version + 1
            events.append(NewEvent(stream, version + 1, type_, payload))
            if type_ == PLANNED:
                system = stream.split("/", 2)[1]
                report.planned += 1
                report.by_target[system] = report.by_target.get(system, 0) + 1
            elif type_ == ACTION:
                report.resolved += 1
            else:
                report.failed += 1

    def _unmappable(
        self, c: Cursor, lookup: _TableLookup, mapping: Mapping, since: int
    ) -> list[tuple[int, list[tuple[str, str, bytes]]]]:
        """(position, feedback events) for records with an open mapping exception."""
        rules = _feedback_rules(mapping)
        if not rules:
            return []
        c.execute(
            "SELECT system, object, key, position FROM p_exceptions WHERE kind='mapping'"
            " AND status IN ('open','retrying') AND position > ? ORDER BY position, id",
            (since,),
        )
        out = []
        for system, obj, key, position in c.fetchall():
            for rule in rules:
                assert rule.feedback is not None
                if rule.feedback[:2] == (system, obj) and key:
                    cid = self._flag_id(c, lookup, mapping, rule.entity, system, obj, key)
                    planned = self._feedback(
                        c, lookup, rule.feedback, cid, flagged=True, mapping=mapping, source_key=key
                    )
                    out.append((position, planned))
        return out

    def _flag_id(
        self,
        c: Cursor,
        lookup: _TableLookup,
        mapping: Mapping,
        entity: str,
        system: str,
        obj: str,
        key: str,
    ) -> str:
        """The canonical id to flag an unmappable source record under: the one its rule's id
        pipeline gives (the id often maps when another field does not), else the entity it
        mapped to before, else Entity/<source key>."""
        rule = mapping.inbound(system, obj)
        if rule is not None and rule.entity == entity:
            c.execute(
                "SELECT record FROM p_source_records WHERE stream=? AND deleted=0",
                (f"source/{system}/{obj}/{key}",),
            )
            r = c.fetchone()
            if r is not None:
                try:
                    return f"{entity}/{rule.natural_id(key, json.loads(r[0]), lookup)}"
                except MappingError:
                    pass
        return lookup.linked_as(entity, system, obj, key) or f"{entity}/{key}"

    def _mapped_again(
        self, c: Cursor, lookup: _TableLookup, mapping: Mapping, since: int
    ) -> list[tuple[int, list[tuple[str, str, bytes]]]]:
        """(position, unflag events) for records that map again, flagged under a canonical id
        other than the one they now map to (their id did not map when they were flagged)."""
        rules = _feedback_rules(mapping)
        if not rules:
            return []
        c.execute(
            "SELECT system, object, key, position FROM p_exceptions WHERE kind='mapping'"
            " AND status='resolved' AND resolution=? AND position > ? ORDER BY position, id",
            (NOW_MAPS, since),
        )
        out = []
        for system, obj, key, position in c.fetchall():
            for rule in rules:
                assert rule.feedback is not None
                if rule.feedback[:2] != (system, obj) or not key:
                    continue
                now = lookup.linked_as(rule.entity, system, obj, key)
                c.execute(
                    "SELECT canonical_id FROM p_outbound WHERE target=? AND object=?"
                    " AND target_key=? ORDER BY canonical_id",
                    (system, obj, key),
                )
                for (cid,) in c.fetchall():
                    if cid != now and cid.startswith(rule.entity + "/"):
                        planned = self._feedback(
                            c,
                            lookup,
                            rule.feedback,
                            cid,
                            flagged=False,
                            mapping=mapping,
                            source_key=key,
                        )
                        out.append((position, planned))
        return out

    def _outbound_row(self, c: Cursor, target: str, obj: str, cid: str) -> Any:
        c.execute(
            "SELECT status, idempotency_key, applied_desired, applied_key, target_key, desired, op,"
            " position FROM p_outbound WHERE target=? AND object=? AND canonical_id=?",
            (target, obj, cid),
        )
        return c.fetchone()

    def _plan_one(
        self,
        c: Cursor,
        lookup: _TableLookup,
        mapping: Mapping,
        rule: OutboundRule,
        cid: str,
        natural_id: str,
        fields: dict[str, Any],
        deleted: bool,
    ) -> list[tuple[str, str, bytes]]:
        """The events planning one rule for one entity produces (often none)."""
        target, obj = rule.system, rule.object
        ob = self._outbound_row(c, target, obj, cid)
        applied_key = ob[3] if ob is not None else None
        try:
            wanted = not deleted and rule.wants(fields, lookup, natural_id)
            refusals = rule.refusals(fields, natural_id, lookup) if wanted else []
            desired = (
                to_json(rule.apply(fields, natural_id, lookup)) if wanted and not refusals else None
            )
        except MappingError as e:
            return self._failure(c, target, obj, cid, e.field, e.rule, str(e), mapping.version)
        events: list[tuple[str, str, bytes]] = []
        if rule.feedback is not None and not deleted:  # an entry not wanted any more: unflag
            events += self._feedback(
                c, lookup, rule.feedback, cid, flagged=bool(refusals), mapping=mapping
            )
        if refusals:
            reason = (
                f"{rule.entity} {natural_id} may not be written to {target}/{obj}: "
                + "; ".join(f"not satisfied: {r}" for r in refusals)
            )
            return events + self._failure(
                c, target, obj, cid, "require", "; ".join(refusals), reason, mapping.version
            )
        if ob is not None and ob[0] in IN_FLIGHT:
            return events  # one write at a time: planned again once this one settles
        target_key = applied_key or lookup.target_key(target, cid)
        if desired is None:
            if applied_key is None:
                return events + self._settle(c, target, obj, cid, ob, "it is not to be written")
            op, delta, desired_state = "delete", {}, {"__deleted__": applied_key}
        else:
            known = self._known(c, target, obj, target_key, ob)
            owned = {
                f
                for f, cf in rule.source_fields().items()
                if cf is not None and mapping.owner(rule.entity, cf) == target
            }
            delta = minimal_delta(desired, known, owned)
            op = "create" if known is None and target_key is None else "update"
            desired_state = desired
            if not delta:
                return events + self._settle(
                    c, target, obj, cid, ob, f"{target} holds what it should"
                )
        planned = self._planned_event(
            ob, target, obj, cid, target_key, op, delta, desired_state, mapping
        )
        if planned is None:  # the same delta already failed: only the refusal is over
            return events + self._settle(c, target, obj, cid, None, "it passes its checks")
        return [*events, planned]

    def _open_exception(self, c: Cursor, kind: str, subject: str) -> Any:
        """(id, status, message) of the open or retrying exception of `kind` about `subject`."""
        xid = exception_id(kind, subject)
        c.execute(
            "SELECT id, status, message FROM p_exceptions WHERE id=? AND status IN ('open','retrying')",
            (xid,),
        )
        return c.fetchone()

    def _settle(
        self, c: Cursor, target: str, obj: str, cid: str, ob: Any, why: str
    ) -> list[tuple[str, str, bytes]]:
        """Resolve the open `plan` exception of this target record and, when its last write
        failed (`ob`), the `write` exception: nothing needs writing any more."""
        subject = outbound_stream(target, obj, cid)
        kinds = ["plan"] + (["write"] if ob is not None and ob[0] == "failed" else [])
        out = []
        for kind in kinds:
            row = self._open_exception(c, kind, subject)
            if row is None:
                continue
            payload = self.store.codec.encode(
                self._action,
                {
                    "exception_id": row[0],
                    "action": "resolve",
                    "note": f"auto: nothing to write to {target}/{obj} any more ({why})",
                    "by": "synchub",
                    "at": now_micros(),
                },
            )
            out.append((f"exception/{row[0]}", ACTION, payload))
        return out

    def _failure(
        self,
        c: Cursor,
        target: str,
        obj: str,
        cid: str,
        field: str,
        rule: str,
        reason: str,
        version: int,
    ) -> list[tuple[str, str, bytes]]:
        """A PlanFailed event, unless the same problem is already open (not retrying)."""
        row = self._open_exception(c, "plan", outbound_stream(target, obj, cid))
        message, _ = plan_failure_text(target, obj, cid, field, reason)
        if row is not None and row[1] == "open" and row[2] == message:
            return []
        return [self._plan_failed(target, obj, cid, field, rule, reason, version)]

    def _planned_event(
        self,
        ob: Any,
        target: str,
        obj: str,
        cid: str,
        target_key: str | None,
        op: str,
        delta: dict[str, Any],
        desired: Any,
        mapping: Mapping,
    ) -> tuple[str, str, bytes] | None:
        """A DeltaPlanned event, unless the same write is already in flight or failed.

        The key chains the previous delta's key, so writing A, then B, then A again gives three
        keys (a key-deduplicating sink must not skip the third), while planning the same delta
        twice (a re-run after a crash) gives the same key and is recognised.
        """
        if ob is not None and ob[5] == dumps(desired) and ob[6] == op and ob[0] != "applied":
            return None  # pending, retrying or failed: not again (retry is the operator's call)
        key = idempotency_key(target, cid, op, desired, previous=ob[1] if ob is not None else "")
        payload = self.store.codec.encode(
            self._planned,
            {
                "target": target,
                "object": obj,
                "canonical_id": cid,
                "target_key": target_key,
                "op": op,
                "fields": dumps(delta),
                "desired": dumps(desired),
                "idempotency_key": key,
                "mapping_version": mapping.version,
                "at": now_micros(),
            },
        )
        return outbound_stream(target, obj, cid), PLANNED, payload

    def _feedback(
        self,
        c: Cursor,
        lookup: _TableLookup,
        feedback: tuple[str, str, str],
        cid: str,
        *,
        flagged: bool,
        mapping: Mapping,
        source_key: str | None = None,
    ) -> list[tuple[str, str, bytes]]:
        """Tag (or untag) the record the entity came from, so the person who owns it sees it."""
        system, obj, tag = feedback
        if self.targets is not None and system not in self.targets:
            return []  # no sink for it in this configuration
        ob = self._outbound_row(c, system, obj, cid)
        was_flagged = (
            ob is not None and ob[5] is not None and json.loads(ob[5]).get("flagged") is True
        )
        if flagged == was_flagged:
            return []
        if not flagged and ob is None:
            return []
        source_key = source_key or lookup.target_key(system, cid)
        if source_key is None:
            return []
        desired = {"tag": tag, "flagged": flagged}
        delta = {"add_tags": [tag]} if flagged else {"remove_tags": [tag]}
        event = self._planned_event(
            ob, system, obj, cid, source_key, "update", delta, desired, mapping
        )
        return [] if event is None else [event]

    def _plan_failed(
        self, target: str, obj: str, cid: str, field: str, rule: str, reason: str, version: int
    ) -> tuple[str, str, bytes]:
        payload = self.store.codec.encode(
            self._failed,
            {
                "target": target,
                "object": obj,
                "canonical_id": cid,
                "field": field,
                "rule": rule,
                "reason": reason,
                "mapping_version": version,
                "at": now_micros(),
            },
        )
        return outbound_stream(target, obj, cid), PLAN_FAILED, payload

    def _known(
        self, c: Cursor, target: str, obj: str, target_key: str | None, ob: Any
    ) -> dict[str, Any] | None:
        """What the target record holds, in the fields deltas are written in: the target's own
        captured record read back by its sink when that capture is newer than our last applied
        write (someone may have edited it), else what we last applied, else None (unknown)."""
        applied = None if ob is None or ob[2] is None else dict(json.loads(ob[2]))
        reader = self.readers.get(target)
        if target_key is None or reader is None:
            return applied
        c.execute(
            "SELECT record, deleted, position FROM p_source_records WHERE stream=?",
            (f"source/{target}/{obj}/{target_key}",),
        )
        r = c.fetchone()
        if r is None or r[1] or (applied is not None and r[2] < ob[7]):
            return applied  # not captured yet, or captured before our last write landed
        read = reader.read_back(obj, json.loads(r[0]))
        if read is None:
            return applied
        return read if applied is None else {**applied, **read}  # what it cannot tell: ours


def _feedback_rules(mapping: Mapping) -> list[OutboundRule]:
    """The target rules that flag refused or unmappable records at their source."""
    return [r for e in mapping.entities() for r in mapping.outbound(e) if r.feedback is not None]
