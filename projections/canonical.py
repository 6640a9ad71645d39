"""The canonical projection: current state of canonical entities under the active mapping.

Table `canonical`: one row per entity (fields as JSON, deleted flag, last change position). The
projection also keeps `source_records`, `waiting` (source_records.py), `mappings` (mappings.py)
and `links` (links.py), and is tracked as one with them.
Ownership: a source only sets fields its system owns (per the mapping's `entities` rules).
Only the system of record deletes or restores an entity; a restore re-maps the entity's other
source records, so the fields their systems own come back as those records are now.

Events it reacts to: SourceChanged (store the record and map it: links, canonical fields, audit
rows, mapping exceptions, what waits for a link), ExceptionAction (a retried mapping exception
re-maps its record). The coordinator (fold.py) deploys mappings and runs the re-map queue; this
module maps one record at a time and is the mapping rules' Lookup over the fold's tables.
Its read queries: projections/canonical_queries.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from collections.abc import Mapping as MappingT
from typing import Any

from hub.canonical_schemas import BUILTIN, CanonicalSchemas
from hub.errors import MappingError
from hub.mapping import InboundRule, Mapping
from hub.mapping.runtime import StepFailure
from hub.store.base import Cursor, StoredEvent
from hub.store.streams import EventType, ExceptionKind, source_stream
from hub.values import dumps
from projections.audit import Audit, Lineage, States
from projections.exception_kinds import unmappable
from projections.exceptions import NOW_MAPS, Exceptions
from projections.field_types import FieldTypes
from projections.links import SOURCE, Links, linked_elsewhere
from projections.source_records import SourceRecords
from projections.tables import Context, Handler, Table

__all__ = ["CANONICAL", "TABLES", "Canonical"]

Changed = Callable[[str, str, dict[str, Any] | None, dict[str, Any] | None], None]


def _unwatched(cid: str, entity: str, old: Any, changed: Any) -> None:
    """No projection watches entity changes."""


CANONICAL = Table(
    "canonical",
    (
        "canonical_id TEXT NOT NULL",
        "entity TEXT NOT NULL",
        "natural_id TEXT NOT NULL",
        "fields TEXT NOT NULL",
        "deleted INTEGER NOT NULL",
        "changes INTEGER NOT NULL",
        "mapping_version INTEGER NOT NULL",
        "position INTEGER NOT NULL",
    ),
    pk=("canonical_id",),
    indexes=(("position",), ("entity", "natural_id")),
)

TABLES = (CANONICAL,)


# -- the projection in a fold ------------------------------------------------------------------


class Canonical:
    """Keeps the canonical tables of one fold. It is the mapping rules' Lookup over the fold's
    tables; entity changes go to `audit`, links to `links`, mapping failures to `exceptions`;
    `remap(stream)` queues a source record for re-mapping after the current event."""

    def __init__(
        self,
        ctx: Context,
        records: SourceRecords,
        links: Links,
        audit: Audit,
        exceptions: Exceptions,
        remap: Callable[[str], None],
        changed: Changed | None = None,
    ) -> None:
        self.ctx = ctx
        self.changed = changed or _unwatched
        """Told of every entity change: (cid, entity, old fields, changed fields), both None
        for a delete (the backlog projection's input)."""
        self.entities = ctx.cache(CANONICAL)
        self.records = records
        self.links = links
        self.audit = audit
        self.exceptions = exceptions
        self.remap = remap
        self.mapping: Mapping | None = None
        self.types = FieldTypes()
        self._schemas = BUILTIN
        self._owned: dict[InboundRule, frozenset[str]] = {}
        """Per rule of the active mapping: the fields its system may set (ownership)."""
        self._misses: list[tuple[str, str, str]] = []
        """Links the last mapping looked up and did not find."""

    def handlers(self) -> dict[str, Handler]:
        return {
            EventType.SOURCE_CHANGED: self._on_source,
            EventType.EXCEPTION_ACTION: self._on_action,
        }

    def flush(self, c: Cursor) -> None:
        self.entities.flush(c)

    def discard(self) -> None:
        self.entities.discard()

    # -- the Lookup protocol (hub.mapping) --------------------------------------------------------

    def canonical_id(self, entity: str, system: str, object: str, key: str) -> str | None:
        link = self.links.get(system, object, str(key))
        if link is None:
            self._misses.append((system, object, str(key)))
            return None
        cid = str(link["canonical_id"])
        if cid.startswith(entity + "/"):
            return cid
        raise linked_elsewhere(entity, system, object, str(key), cid)

    def target_key(self, system: str, canonical_id: str) -> str | None:
        return self.links.target_key(system, canonical_id)

    def object_key(self, system: str, object: str, canonical_id: str) -> str | None:
        return self.links.object_key(system, object, canonical_id)

    def referencing(
        self, entity: str, field: str, canonical_id: str
    ) -> list[tuple[str, dict[str, Any]]]:
        raise StepFailure(
            "referenced_by, sum_of and in_force are for targets (what refers to an entity is "
            "known once every source is mapped): use them in a target rule's with, when, "
            "require or fields"
        )

    def canonical_field(self, canonical_id: str, field: str) -> Any:
        assert self.ctx.c is not None
        row = self.entities.get(self.ctx.c, canonical_id)
        if row is None or row["deleted"]:
            return None
        fields = json.loads(row["fields"])
        return fields if field == "*" else fields.get(field)

    # -- events ---------------------------------------------------------------------------------

    def _on_source(self, e: StoredEvent, d: dict[str, Any]) -> None:
        _, system, obj, key = e.stream.split("/", 3)
        after = d["after"]
        source_time = d["source_time"]  # integer microseconds: the fold decodes them raw
        captured_at = d["captured_at"]
        self.records.put(e, system, obj, key, after, source_time, captured_at)
        self.map(e.stream, system, obj, key, after, source_time, captured_at)

    def _on_action(self, e: StoredEvent, d: dict[str, Any]) -> None:
        """An operator retries a mapping exception: its record is mapped again."""
        if d["action"] in ("resolve", "ignore"):
            return
        row = self.exceptions.get(d["exception_id"])
        if row is not None and row["kind"] == ExceptionKind.MAPPING:
            self.remap(row["subject"])

    # -- mapping one record -----------------------------------------------------------------------

    def remap_record(self, stream: str) -> None:
        """Map source record `stream` again as it is now (nothing if it is deleted)."""
        rec = self.records.get(stream)
        if rec is not None and not rec["deleted"]:
            self.map(
                stream,
                rec["system"],
                rec["object"],
                rec["key"],
                json.loads(rec["record"]),
                rec["source_time"],
                rec["captured_at"],
            )

    def map(
        self,
        stream: str,
        system: str,
        obj: str,
        key: str,
        record: MappingT[str, Any] | None,
        source_time: int | None,
        captured_at: int | None,
    ) -> None:
        """Map one source record under the active mapping (None: the record was deleted)."""
        mapping = self.mapping
        rule = mapping.inbound(system, obj) if mapping is not None else None
        if rule is None or mapping is None:
            if mapping is not None:  # a version without its rule: nothing left to fix
                self.exceptions.resolve_open(
                    stream,
                    (ExceptionKind.MAPPING,),
                    f"auto: no rule maps {system}/{obj} any more (mapping version "
                    f"{mapping.version}); its entities keep their last state",
                )
            return
        link = self.links.get(system, obj, key)
        lineage = Lineage(system, obj, key, mapping.version, source_time, captured_at)
        try:
            if record is None or rule.is_delete(record, self, key):
                if link is not None:
                    self._delete_entity(str(link["canonical_id"]), rule.entity, lineage)
                self.exceptions.resolve_open(
                    stream, (ExceptionKind.MAPPING,), "auto: the record was deleted"
                )
                return
            self._misses.clear()
            mapped = rule.apply(key, record, self)
        except MappingError as err:
            self.records.wait(stream, self._misses)
            missing = self._misses[-1] if self._misses else None
            self.exceptions.open(
                *unmappable(stream, rule, key, err, mapping.version, record, missing)
            )
            return
        cid = mapped.canonical_id
        stored, bad = self.types.stored(rule.entity, mapped.fields)
        if bad is not None:
            value = mapped.fields[bad]
            problem = self.types.problem(rule.entity, bad, value) or f"{bad} does not fit"
            invalid = MappingError(problem, field=bad, rule="canonical schema", value=value)
            missing = self._misses[-1] if self._misses else None
            self.exceptions.open(
                *unmappable(stream, rule, key, invalid, mapping.version, record, missing)
            )
            return
        if link is None or link["canonical_id"] != cid or link["role"] != SOURCE:
            self.links.link(system, obj, key, cid, SOURCE)
            if link is not None and link["role"] == SOURCE and link["canonical_id"] != cid:
                self._moved_away(str(link["canonical_id"]), lineage)
        owned_fields = self._owned.get(rule)
        if owned_fields is None:
            owned_fields = self._owned[rule] = frozenset(
                name
                for name, _ in rule.fields
                if mapping.owner(rule.entity, name) in (None, system)
            )
        owned = (
            stored
            if owned_fields.issuperset(stored)
            else {f: v for f, v in stored.items() if f in owned_fields}
        )
        self._set_fields(cid, rule.entity, mapped.natural_id, owned, lineage)
        self.exceptions.resolve_open(stream, (ExceptionKind.MAPPING,), NOW_MAPS)

    def _set_fields(
        self, cid: str, entity: str, natural_id: str, fields: dict[str, Any], lineage: Lineage
    ) -> None:
        c = self.ctx.c
        assert c is not None and self.mapping is not None
        row = self.entities.get(c, cid)
        if (
            row is not None
            and row["deleted"]
            and self.mapping.owner(entity, "*") not in (None, lineage.system)
        ):
            return  # only the system of record restores an entity it deleted
        if row is None or row["deleted"]:
            op = "create" if row is None else "restore"
            old: dict[str, Any] = {}
        else:
            op = "update"
            old = json.loads(row["fields"])
        if op == "update":
            changed = {f: v for f, v in fields.items() if f not in old or old[f] != v}
            if not changed:
                return
        else:
            changed = fields
        changed_json = dumps(changed)
        after = {**old, **changed} if old else changed
        self.entities.put(
            cid,
            {
                "canonical_id": cid,
                "entity": entity,
                "natural_id": natural_id,
                "fields": dumps(after) if old else changed_json,
                "deleted": 0,
                "changes": (row["changes"] if row else 0) + 1,
                "mapping_version": lineage.mapping_version,
                "position": self.ctx.position,
            },
        )
        self.audit.record(
            cid,
            entity,
            op,
            None if op != "update" else dumps({f: old[f] for f in changed if f in old}),
            changed_json,
            lineage,
            (self._schemas, old if op == "update" else None, after, sorted(changed))
            if self.audit.forms
            else None,
        )
        self.changed(cid, entity, old, changed)
        if op == "restore":
            self._remap_others(cid, lineage)

    def _remap_others(self, cid: str, lineage: Lineage) -> None:
        """Re-map the other source records of a restored entity (after this event), so the
        fields their systems own come back as those records are now — changes made while the
        entity was deleted included — instead of waiting for those records to change again."""
        for source in self.links.sources_of(cid):
            if source != lineage[:3]:
                self.remap(source_stream(*source))

    def _moved_away(self, old: str, lineage: Lineage) -> None:
        """A source record now maps to another canonical id (a new natural id, e.g. under a new
        mapping version): the entity it made before is deleted when no other source record
        still maps to it and the system is its system of record — else it would live on as a
        duplicate, in canonical state and in every target."""
        self._delete_entity(old, old.split("/", 1)[0], lineage)

    def _delete_entity(self, cid: str, entity: str, lineage: Lineage) -> None:
        """Delete `cid` for the source record in `lineage` (deleted, or mapping elsewhere now),
        unless its system is not the system of record, or another live record of a system
        that may delete it still maps to it (e.g. an ERP employee whose login was deleted)."""
        c = self.ctx.c
        assert c is not None and self.mapping is not None
        owner = self.mapping.owner(entity, "*")
        if owner not in (None, lineage.system):
            return  # only the system of record deletes an entity
        row = self.entities.get(c, cid)
        if row is None or row["deleted"]:
            return
        for system, obj, key in self.links.sources_of(cid):
            if (system, obj, key) == lineage[:3] or owner not in (None, system):
                continue
            if self._live(system, obj, key):
                return  # still there, in a system that could delete it
        self.entities.put(
            cid, {**row, "deleted": 1, "changes": row["changes"] + 1, "position": self.ctx.position}
        )
        states: States | None = None
        if self.audit.forms:
            states = (self._schemas, json.loads(row["fields"]), None, [])
        self.audit.record(cid, row["entity"], "delete", None, None, lineage, states)
        self.changed(cid, row["entity"], None, None)

    def _live(self, system: str, obj: str, key: str) -> bool:
        """Whether source record system/obj/key exists and its rule does not call it deleted."""
        assert self.ctx.c is not None and self.mapping is not None
        rec = self.records.get(source_stream(system, obj, key))
        rule = self.mapping.inbound(system, obj)
        if rec is None or rec["deleted"] or rule is None:
            return False
        try:
            return not rule.is_delete(json.loads(rec["record"]), self, key)
        except MappingError:
            return True  # not known to be deleted

    # -- deployments ------------------------------------------------------------------------------

    def activate(self, mapping: Mapping | None, schemas: CanonicalSchemas = BUILTIN) -> None:
        """Map with `mapping` from now on (None: no mapping is deployed), checking values
        against the canonical `schemas` deployed with it."""
        self.mapping = mapping
        if schemas is not self._schemas:
            self.types = FieldTypes(schemas)
            self._schemas = schemas
        self._owned.clear()

    def remap_all(self) -> None:
        """Map every live source record again, in stream order (after a deployment)."""
        for r in self.records.live():
            self.map(r.stream, r.system, r.object, r.key, r.record, r.source_time, r.captured_at)
