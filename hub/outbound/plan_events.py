"""The exception side of planning: the events that open a `plan` exception (PlanFailed) and
the ones that resolve exceptions once a target record needs no write any more.

Each is produced at most once for the same state: a failure already open with the same
message, or (for `unwanted: exception`) one a person has decided, appends nothing, so an idle
pass appends no event.
"""

from __future__ import annotations

from hub.ingest import now_micros
from hub.mapping import OutboundRule
from hub.outbound.feedback import PlannedEvent
from hub.schemas import hub_schema
from hub.store.base import Cursor, EventStore
from hub.store.streams import (
    EventType,
    ExceptionKind,
    ExceptionStatus,
    OutboundStatus,
    exception_stream,
    outbound_stream,
)
from projections import canonical_queries, exceptions
from projections.outbound import OutboundState

__all__ = ["PlanEvents"]


class PlanEvents:
    """Builds the PlanFailed and ExceptionAction events of the planner."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self._failed = hub_schema("plan_failed")
        self._action = hub_schema("exception_action")
        store.codec.add(self._failed)
        store.codec.add(self._action)

    def settle(
        self, c: Cursor, target: str, obj: str, cid: str, ob: OutboundState | None, why: str
    ) -> list[PlannedEvent]:
        """Resolve the open `plan` exception of this target record and, when its last write
        failed (`ob`), the `write` exception: nothing needs writing any more."""
        subject = outbound_stream(target, obj, cid)
        kinds = [ExceptionKind.PLAN]
        if ob is not None and ob.status == OutboundStatus.FAILED:
            kinds.append(ExceptionKind.WRITE)
        out: list[PlannedEvent] = []
        for kind in kinds:
            row = exceptions.open_of(c, kind, subject)
            if row is None:
                continue
            payload = self.store.codec.encode(
                self._action,
                {
                    "exception_id": row.id,
                    "action": "resolve",
                    "note": f"auto: nothing to write to {target}/{obj} any more ({why})",
                    "by": "synchub",
                    "at": now_micros(),
                },
            )
            out.append((exception_stream(row.id), EventType.EXCEPTION_ACTION, payload))
        return out

    def failure(
        self,
        c: Cursor,
        target: str,
        obj: str,
        cid: str,
        field: str,
        rule: str,
        reason: str,
        version: int,
    ) -> list[PlannedEvent]:
        """A PlanFailed event, unless the same problem is already open (not retrying)."""
        row = exceptions.open_of(c, ExceptionKind.PLAN, outbound_stream(target, obj, cid))
        message, _ = exceptions.plan_failure_text(target, obj, cid, field, reason)
        if row is not None and row.status == ExceptionStatus.OPEN and row.message == message:
            return []
        return [self.plan_failed(target, obj, cid, field, rule, reason, version)]

    def unwanted(
        self,
        c: Cursor,
        rule: OutboundRule,
        entity: canonical_queries.Entity,
        target_key: str,
        version: int,
    ) -> list[PlannedEvent]:
        """A record written before for an entity not wanted any more, under `unwanted:
        exception`: a plan exception for a person to decide, opened once (resolving or ignoring
        it is the decision: it is not opened again for the same reason)."""
        target, obj, cid = rule.system, rule.object, entity.canonical_id
        why = "it was deleted" if entity.deleted else "its `when` is false now"
        reason = (
            f"{rule.entity} {entity.natural_id} is not to be written to {target}/{obj} any more "
            f"({why}), but {target} record {target_key} was written for it; synchub leaves it "
            f"as it is (unwanted: exception): close or delete it in {target}, or bring the "
            f"{rule.entity} back, then resolve this exception"
        )
        subject = outbound_stream(target, obj, cid)
        message, _ = exceptions.plan_failure_text(target, obj, cid, "when", reason)
        latest = exceptions.latest_of(c, ExceptionKind.PLAN, subject)
        if latest is not None and latest.message == message:
            return []  # open already, or a person decided already
        return [self.plan_failed(target, obj, cid, "when", "unwanted: exception", reason, version)]

    def plan_failed(
        self, target: str, obj: str, cid: str, field: str, rule: str, reason: str, version: int
    ) -> PlannedEvent:
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
        return outbound_stream(target, obj, cid), EventType.PLAN_FAILED, payload
