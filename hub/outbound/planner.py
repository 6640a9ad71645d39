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

Refused and unmappable entries are flagged at their source by feedback.py; the planner reads
the projections through their read API (projections.canonical, source_records, outbound,
exceptions) and the mapping Lookup over them (lookup.py).
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
from hub.mapping import Mapping, MissingTargetKeyError, OutboundRule
from hub.outbound import replan
from hub.outbound.feedback import Feedback, PlannedEvent
from hub.outbound.lookup import TableLookup
from hub.outbound.matching import Matcher, describe
from hub.outbound.plan_events import PlanEvents
from hub.schemas import hub_schema
from hub.spi import ReadsBack, same_value
from hub.store.base import Cursor, EventStore, NewEvent
from hub.store.streams import (
    IN_FLIGHT,
    EventType,
    ExceptionStatus,
    OutboundStatus,
    outbound_stream,
    parse_outbound_stream,
    source_stream,
)
from hub.values import dumps, to_json
from projections import canonical_queries, exceptions, links, outbound, source_records
from projections.outbound import OutboundState


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


class Planner:
    """Appends DeltaPlanned (and PlanFailed) events for canonical changes. Run after catch-up."""

    def __init__(
        self,
        store: EventStore,
        targets: set[str] | None = None,
        readers: collections.abc.Mapping[str, ReadsBack] | None = None,
    ) -> None:
        """`readers`: per target system, the sink that reads its captured records back in the
        fields it writes (see hub.spi.ReadsBack); without one, a target is known by what was
        last applied to it."""
        self.store = store
        self.targets = targets
        self.readers = dict(readers or {})
        self.feedback = Feedback(targets, self._planned_event)
        self._matcher: Matcher | None = None
        """Finds the records a create would duplicate (hub.outbound.matching), per pass."""
        self._planned = hub_schema("delta_planned")
        store.codec.add(self._planned)
        self.events = PlanEvents(store)
        self._waiting: list[tuple[str, str, str, MissingTargetKeyError, int]] | None = None
        """During a pass: the entities whose target key of another entity is not known yet."""
        self._planned_now: set[tuple[str, str]] = set()
        """During a pass: (target, canonical id) of the writes planned in it."""

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
            lookup = TableLookup(c)
            self._matcher = Matcher(c, self.readers)
            rows = canonical_queries.changed_since(c, since)
            # Target records that changed at the target (drift, or our own echo): re-examine
            # the entities they are linked to, so the system of record's state is restored.
            again = source_records.drifted_since(c, since)
            # Writes that settled (applied or failed): a newer state may have waited for them.
            settled = outbound.settled_since(c, since)
            again += settled
            # Open plan exceptions: re-checked when anything changed (a canonical entity, or a
            # record captured anywhere: a target's duplicates merged), or on an operator's retry.
            changed = bool(rows) or source_records.captured_since(c, since)
            recheck = [
                (cid, 0)
                for cid, status in exceptions.open_plans(c)
                if changed or status == ExceptionStatus.RETRYING
            ]
            # Entities that read a changed one (replan.py), and those that waited for a
            # target key of an entity whose write settled.
            again += replan.referred(mapping, rows)
            again += replan.siblings(lookup, mapping, rows)
            again += replan.dependents(lookup, mapping, rows)
            again += replan.waiting_for(lookup, mapping, settled)
            seen = {r.canonical_id for r in rows}
            for cid, position in again + recheck:
                high = max(high, position)
                if cid in seen:
                    continue
                seen.add(cid)
                entity = canonical_queries.entity(c, cid)
                if entity is not None:
                    rows.append(entity)
            self._waiting, self._planned_now = [], set()
            for row in rows:
                high = max(high, row.position)
                report.examined += 1
                for rule in mapping.outbound(row.entity):
                    if self.targets is not None and rule.system not in self.targets:
                        continue
                    planned_events = self._plan_one(c, lookup, mapping, rule, row)
                    if not planned_events:
                        report.unchanged += 1
                        continue
                    self._collect(planned_events, events, versions, report)
            for target, obj, cid, error, version in self._waiting:
                if not self._written_soon(c, error.system, error.canonical_id):
                    failed = self.events.failure(
                        c, target, obj, cid, error.field, error.rule, str(error), version
                    )
                    self._collect(failed, events, versions, report)
            self._waiting = None
            # Records that could not even be mapped are invalid entries too: flagged at their
            # source, and unflagged once they map again (see feedback.py).
            flags = self.feedback.unmappable(c, lookup, mapping, since)
            flags += self.feedback.mapped_again(c, lookup, mapping, since)
            for position, planned in flags:
                high = max(high, position)
                self._collect(planned, events, versions, report)
        if events:
            self.store.append(events)
            crashpoint("planner.after_append")
        if high > since:
            with self.store.db.transaction(commit=True) as c:
                self.store.db.track(c, name, high)
        return report

    def _written_soon(self, c: Cursor, target: str, canonical_id: str) -> bool:
        """Whether `canonical_id` has a write to `target` planned in this pass or in flight:
        an entity waiting for its target key then waits quietly (no exception), and is planned
        again when that write settles (replan.waiting_for)."""
        if (target, canonical_id) in self._planned_now:
            return True
        return outbound.has_in_flight(c, target, canonical_id)

    def _collect(
        self,
        planned: list[PlannedEvent],
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
            if type_ == EventType.DELTA_PLANNED:
                written = parse_outbound_stream(stream)
                assert written is not None  # planned events are in outbound streams
                self._planned_now.add((written.target, written.canonical_id))
                report.planned += 1
                report.by_target[written.target] = report.by_target.get(written.target, 0) + 1
            elif type_ == EventType.EXCEPTION_ACTION:
                report.resolved += 1
            else:
                report.failed += 1

    def _plan_one(
        self,
        c: Cursor,
        lookup: TableLookup,
        mapping: Mapping,
        rule: OutboundRule,
        entity: canonical_queries.Entity,
    ) -> list[PlannedEvent]:
        """The events planning one rule for one entity produces (often none)."""
        cid, natural_id = entity.canonical_id, entity.natural_id
        fields: collections.abc.Mapping[str, Any] = entity.fields
        deleted = entity.deleted
        target, obj = rule.system, rule.object
        ob = outbound.state_of(c, target, obj, cid)
        applied_key = ob.applied_key if ob is not None else None
        try:
            if not deleted:
                fields = rule.extended(fields, natural_id, lookup)
            wanted = not deleted and rule.wants(fields, lookup, natural_id)
            refusals = rule.refusals(fields, natural_id, lookup) if wanted else []
            desired = (
                to_json(rule.apply(fields, natural_id, lookup)) if wanted and not refusals else None
            )
        except MissingTargetKeyError as e:
            if self._waiting is None:
                return self.events.failure(
                    c, target, obj, cid, e.field, e.rule, str(e), mapping.version
                )
            self._waiting.append((target, obj, cid, e, mapping.version))
            return []  # decided once the pass has planned everything: see _written_soon
        except MappingError as e:
            return self.events.failure(
                c, target, obj, cid, e.field, e.rule, str(e), mapping.version
            )
        events: list[PlannedEvent] = []
        if rule.feedback is not None and not deleted:  # an entry not wanted any more: unflag
            events += self.feedback.flag(
                c, lookup, rule.feedback, cid, flagged=bool(refusals), mapping=mapping
            )
        if refusals:
            reason = (
                f"{rule.entity} {natural_id} may not be written to {target}/{obj}: "
                + "; ".join(f"not satisfied: {r}" for r in refusals)
            )
            return events + self.events.failure(
                c, target, obj, cid, "require", "; ".join(refusals), reason, mapping.version
            )
        if ob is not None and ob.status in IN_FLIGHT:
            return events  # one write at a time: planned again once this one settles
        # A record of this very object linked to the entity (captured back, or adopted): not
        # just any record of the system (an Account's CRM party is no billing note of it).
        target_key = applied_key or links.object_key(c, cid, target, obj)
        if desired is None:
            if applied_key is None:
                return events + self.events.settle(
                    c, target, obj, cid, ob, "it is not to be written"
                )
            if rule.unwanted == "keep":
                return events + self.events.settle(c, target, obj, cid, ob, "its record is kept")
            if rule.unwanted == "exception":
                return events + self.events.unwanted(c, rule, entity, applied_key, mapping.version)
            op, delta, desired_state = "delete", {}, {"__deleted__": applied_key}
        else:
            known = self._known(c, target, obj, target_key, ob)
            owned = {
                f
                for f, cf in rule.source_fields().items()
                if cf is not None and mapping.owner(rule.entity, cf) == target
            }
            adopted = None
            if known is None and target_key is None and rule.match:
                assert self._matcher is not None  # set by plan()
                found = self._matcher.find(target, obj, rule.match, desired, cid)
                if found.problem:
                    reason = describe(found, rule.entity, natural_id, target, obj)
                    return events + self.events.failure(
                        c,
                        target,
                        obj,
                        cid,
                        "match",
                        " / ".join(found.rule),
                        reason,
                        mapping.version,
                    )
                if found.adopt is not None:
                    adopted = target_key = found.adopt
                    known = self._known(c, target, obj, target_key, ob) or {}
            delta = minimal_delta(desired, known, owned)
            op = "create" if known is None and target_key is None else "update"
            desired_state = desired
            if not delta and adopted is None:
                return events + self.events.settle(
                    c, target, obj, cid, ob, f"{target} holds what it should"
                )
        planned = self._planned_event(
            ob, target, obj, cid, target_key, op, delta, desired_state, mapping
        )
        if planned is None:  # the same delta already failed: only the refusal is over
            return events + self.events.settle(c, target, obj, cid, None, "it passes its checks")
        return [*events, planned]

    def _planned_event(
        self,
        ob: OutboundState | None,
        target: str,
        obj: str,
        cid: str,
        target_key: str | None,
        op: str,
        delta: dict[str, Any],
        desired: Any,
        mapping: Mapping,
    ) -> PlannedEvent | None:
        """A DeltaPlanned event, unless the same write is already in flight or failed.

        The key chains the previous delta's key, so writing A, then B, then A again gives three
        keys (a key-deduplicating sink must not skip the third), while planning the same delta
        twice (a re-run after a crash) gives the same key and is recognised.
        """
        if (
            ob is not None
            and ob.desired == dumps(desired)
            and ob.op == op
            and ob.status != OutboundStatus.APPLIED
        ):
            return None  # pending, retrying or failed: not again (retry is the operator's call)
        previous = ob.idempotency_key if ob is not None else ""
        key = idempotency_key(target, cid, op, desired, previous=previous)
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
        return outbound_stream(target, obj, cid), EventType.DELTA_PLANNED, payload

    def _known(
        self, c: Cursor, target: str, obj: str, target_key: str | None, ob: OutboundState | None
    ) -> dict[str, Any] | None:
        """What the target record holds, in the fields deltas are written in: the target's own
        captured record read back by its sink when that capture is newer than our last applied
        write (someone may have edited it), else what we last applied, else None (unknown)."""
        applied = (
            None
            if ob is None or ob.applied_desired is None
            else dict(json.loads(ob.applied_desired))
        )
        reader = self.readers.get(target)
        if target_key is None or reader is None:
            return applied
        rec = source_records.source_record(c, source_stream(target, obj, target_key))
        if (
            rec is None
            or rec.deleted
            or rec.record is None
            or (applied is not None and ob is not None and rec.position < ob.position)
        ):
            return applied  # not captured yet, or captured before our last write landed
        read = reader.read_back(obj, rec.record)
        if read is None:
            return applied
        return read if applied is None else {**applied, **read}  # what it cannot tell: ours
