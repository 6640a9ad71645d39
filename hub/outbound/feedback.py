"""Feedback flags: an invalid entry is tagged at its source, so the person who owns it sees it.

A target rule with `feedback: SYSTEM OBJECT TAG` flags the record an entity came from while the
rule refuses it (its `require` checks fail), and removes the flag once it passes. Records that
cannot even be mapped (e.g. a malformed #tag) are invalid entries too: they are flagged under
the canonical id they will map to (see Feedback.flag_id), so the same rule removes the flag
once the record maps and passes its checks; a flag left under another id (the id itself did not
map) is removed once the record maps again.

A flag is an `update` DeltaPlanned to the source system (`add_tags` / `remove_tags`), planned
like any other write (the planner's `planned_event`): idempotent, one at a time per record.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from hub.errors import MappingError
from hub.mapping import Mapping, OutboundRule
from hub.outbound.lookup import TableLookup
from hub.store.base import Cursor
from hub.store.streams import source_stream
from projections import exceptions, outbound, source_records
from projections.outbound import OutboundState

PlannedEvent = tuple[str, str, bytes]
"""(stream, event type, payload) of an event the planner appends."""

PlanWrite = Callable[
    [OutboundState | None, str, str, str, str | None, str, dict[str, Any], Any, Mapping],
    PlannedEvent | None,
]
"""The planner's DeltaPlanned for (latest row, target, object, canonical id, target key, op,
delta, desired state, mapping), or None when that write is already in flight or failed."""


def feedback_rules(mapping: Mapping) -> list[OutboundRule]:
    """The target rules that flag refused or unmappable records at their source."""
    return [r for e in mapping.entities() for r in mapping.outbound(e) if r.feedback is not None]


class Feedback:
    """Plans the flags of one planner: `targets` the systems it has sinks for (None: all),
    `planned_event` how it plans a write."""

    def __init__(self, targets: set[str] | None, planned_event: PlanWrite) -> None:
        self.targets = targets
        self.planned_event = planned_event

    def flag(
        self,
        c: Cursor,
        lookup: TableLookup,
        feedback: tuple[str, str, str],
        cid: str,
        *,
        flagged: bool,
        mapping: Mapping,
        source_key: str | None = None,
    ) -> list[PlannedEvent]:
        """Tag (or untag) the record the entity came from, so the person who owns it sees it."""
        system, obj, tag = feedback
        if self.targets is not None and system not in self.targets:
            return []  # no sink for it in this configuration
        ob = outbound.state_of(c, system, obj, cid)
        was_flagged = (
            ob is not None
            and ob.desired is not None
            and json.loads(ob.desired).get("flagged") is True
        )
        if flagged == was_flagged:
            return []
        if not flagged and ob is None:
            return []
        source_key = source_key or lookup.target_key(system, cid)
        if source_key is None:
            return []
        desired = {"tag": tag, "flagged": flagged}
        delta: dict[str, Any] = {"add_tags": [tag]} if flagged else {"remove_tags": [tag]}
        event = self.planned_event(
            ob, system, obj, cid, source_key, "update", delta, desired, mapping
        )
        return [] if event is None else [event]

    def unmappable(
        self, c: Cursor, lookup: TableLookup, mapping: Mapping, since: int
    ) -> list[tuple[int, list[PlannedEvent]]]:
        """(position, feedback events) for records with an open mapping exception."""
        rules = feedback_rules(mapping)
        if not rules:
            return []
        out = []
        for system, obj, key, position in exceptions.unmappable_since(c, since):
            for rule in rules:
                assert rule.feedback is not None
                if rule.feedback[:2] == (system, obj) and key:
                    cid = self.flag_id(c, lookup, mapping, rule.entity, system, obj, key)
                    planned = self.flag(
                        c, lookup, rule.feedback, cid, flagged=True, mapping=mapping, source_key=key
                    )
                    out.append((position, planned))
        return out

    def flag_id(
        self,
        c: Cursor,
        lookup: TableLookup,
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
            rec = source_records.source_record(c, source_stream(system, obj, key))
            if rec is not None and not rec.deleted and rec.record is not None:
                try:
                    return f"{entity}/{rule.natural_id(key, rec.record, lookup)}"
                except MappingError:
                    pass
        return lookup.linked_as(entity, system, obj, key) or f"{entity}/{key}"

    def mapped_again(
        self, c: Cursor, lookup: TableLookup, mapping: Mapping, since: int
    ) -> list[tuple[int, list[PlannedEvent]]]:
        """(position, unflag events) for records that map again, flagged under a canonical id
        other than the one they now map to (their id did not map when they were flagged)."""
        rules = feedback_rules(mapping)
        if not rules:
            return []
        out = []
        for system, obj, key, position in exceptions.mapped_again_since(c, since):
            for rule in rules:
                assert rule.feedback is not None
                if rule.feedback[:2] != (system, obj) or not key:
                    continue
                now = lookup.linked_as(rule.entity, system, obj, key)
                for cid in outbound.canonical_ids_at(c, system, obj, key):
                    if cid != now and cid.startswith(rule.entity + "/"):
                        planned = self.flag(
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
