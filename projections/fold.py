"""The fold: applies pages of events to every projection's tables, deterministically.

Same events in the same order ⇒ same rows (no wall clock, no randomness, ordered iteration).
Rows are read and written through write-back caches; the runner flushes them and records the
tracked position in the same transaction.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from collections.abc import Mapping as MappingT
from typing import Any

import fastavro.validation

from hub.errors import MappingError, MappingSpecError
from hub.mapping import InboundRule, Mapping
from hub.schemas import canonical_entities, canonical_schema
from hub.store.base import Cursor, Dialect, StoredEvent
from hub.store.rows import MultiRowInsert
from hub.values import dumps, micros, to_json
from projections.audit import AUDIT
from projections.canonical import CANONICAL, MAPPINGS, SOURCE_RECORDS, WAITING
from projections.exceptions import EXCEPTIONS, NOW_MAPS, OPEN, exception_id, plan_failure_text
from projections.links import LINKS, linked_elsewhere
from projections.outbound import OUTBOUND
from projections.tables import RowCache, Table

_SIMPLE = {str: "string", bool: "boolean", type(None): "null"}
_SLOW = object()
"""A fast converter's answer when the value needs the general check."""

Converter = Callable[[Any], Any] | None
"""Stored form of a value of one Python type, or _SLOW; None: the value as it is."""


def _long(value: int) -> Any:
    return value if -(2**63) <= value < 2**63 else _SLOW


def _int(value: int) -> Any:
    return value if -(2**31) <= value < 2**31 else _SLOW


def _iso_date(value: dt.date) -> Any:
    return value.isoformat()


def _fast_converters(avro_type: Any) -> dict[type, Converter]:
    """Python type → how a value of exactly that type fits `avro_type` without fastavro's
    general validator (the common cases); other types take the slow path."""
    out: dict[type, Converter] = {}
    for member in avro_type if isinstance(avro_type, list) else [avro_type]:
        if member in ("string", "boolean", "null"):
            out[{"string": str, "boolean": bool, "null": type(None)}[member]] = None
        elif member == "long":
            out[int] = _long
        elif member == "int":
            out[int] = _int
        elif isinstance(member, dict) and member.get("logicalType") == "date":
            out[dt.date] = _iso_date
    return out


class _FieldTypes:
    """Per-entity canonical field types, for validating mapped values."""

    def __init__(self) -> None:
        self.types: dict[str, dict[str, Any]] = {}
        self.fast: dict[str, dict[str, dict[type, Converter]]] = {}
        for entity in canonical_entities():
            parsed = canonical_schema(entity).parsed
            self.types[entity] = {f["name"]: f["type"] for f in parsed["fields"]}
            self.fast[entity] = {
                name: _fast_converters(t) for name, t in self.types[entity].items()
            }

    def stored(self, entity: str, fields: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
        """(`fields` as stored (see to_json), None), or ({}, the first field whose value does not
        fit its canonical type: `problem` says why)."""
        fast = self.fast.get(entity, {})
        out = {}
        for name, value in fields.items():
            conv = fast.get(name, _NO_FAST).get(type(value), _SLOW)
            if conv is None:
                out[name] = value
                continue
            if conv is not _SLOW:
                stored = conv(value)  # type: ignore[operator]
                if stored is not _SLOW:
                    out[name] = stored
                    continue
            if self.problem(entity, name, value) is not None:
                return {}, name
            out[name] = to_json(value)
        return out, None

    def problem(self, entity: str, field: str, value: Any) -> str | None:
        types = self.types.get(entity)
        if types is None:
            return f"{entity} is not a canonical entity"
        t = types.get(field)
        if t is None:
            return f"{entity} has no field {field!r} (known: {', '.join(sorted(types))})"
        simple = _SIMPLE.get(type(value))
        if simple is not None and (t == simple or (isinstance(t, list) and simple in t)):
            return None  # the common cases, without fastavro's general validator
        try:
            ok = fastavro.validation.validate(value, t, raise_errors=False)
        except Exception:
            ok = False
        if not ok:
            return f"value {value!r} ({type(value).__name__}) does not fit {entity}.{field}"
        return None


_NO_FAST: dict[type, Converter] = {}


class Fold:
    """Applies events to the projection tables of one generation (see runner.Projector)."""

    def __init__(
        self,
        physical: Callable[[str], str],
        decode: Callable[[bytes], Any],
        dialect: Dialect,
        *,
        fresh: bool = False,
    ) -> None:
        """`fresh`: the tables are new and empty (a rebuild), so rows this fold has not
        written do not exist (see RowCache `complete`)."""
        self.decode = decode

        def cache(table: Table) -> RowCache:
            return RowCache(table, physical(table.name), dialect, complete=fresh)

        self.canon = cache(CANONICAL)
        self.records = cache(SOURCE_RECORDS)
        self.links = cache(LINKS)
        self.exceptions = cache(EXCEPTIONS)
        self.outbound = cache(OUTBOUND)
        self.mappings = cache(MAPPINGS)
        self.waiting = cache(WAITING)
        self.t_waiting = physical("waiting")
        self._waiting_keys: set[tuple[str, str, str]] = set()
        self._misses: list[tuple[str, str, str]] = []
        self._requeue: list[str] = []
        self.t_audit = physical("audit")
        self._audit_insert = MultiRowInsert(
            f"INSERT INTO {self.t_audit} ({', '.join(AUDIT.column_names)})", len(AUDIT.columns)
        )
        self.t_links = physical("links")
        self.t_records = physical("source_records")
        self.t_exceptions = physical("exceptions")
        self.t_mappings = physical("mappings")
        self.audit_rows: list[tuple[Any, ...]] = []
        self.mapping: Mapping | None = None
        self.types = _FieldTypes()
        self._seq = 0
        self._pos = 0
        self._c: Cursor | None = None
        self._target_keys: set[tuple[str, str]] = set()
        """(system, canonical id) of links put since the last flush of the links cache."""
        self._open_subjects: set[str] = set()
        self._owned: dict[InboundRule, frozenset[str]] = {}
        """Per rule of the active mapping: the fields its system may set (ownership)."""

    # -- lifecycle ----------------------------------------------------------------------------

    def load(self, c: Cursor) -> None:
        """Load the active mapping from the tables (on start and after a rollback)."""
        c.execute(f"SELECT version, spec FROM {self.t_mappings} ORDER BY version DESC LIMIT 1")
        r = c.fetchone()
        self.mapping = None
        self._owned.clear()
        if r is not None:
            self.mapping = Mapping.from_dict(json.loads(r[1]), version=int(r[0]))
        c.execute(
            f"SELECT DISTINCT subject FROM {self.t_exceptions} WHERE status IN ('open','retrying')"
        )
        self._open_subjects = {r[0] for r in c.fetchall()}
        c.execute(f"SELECT DISTINCT system, object, key FROM {self.t_waiting}")
        self._waiting_keys = {(r[0], r[1], r[2]) for r in c.fetchall()}

    def caches(self) -> tuple[RowCache, ...]:
        return (
            self.canon,
            self.records,
            self.links,
            self.exceptions,
            self.outbound,
            self.mappings,
            self.waiting,
        )

    def flush(self, c: Cursor) -> None:
        for cache in self.caches():
            cache.flush(c)
        if self.audit_rows:
            self._audit_insert.run(c, self.audit_rows)
            self.audit_rows.clear()
        self._target_keys.clear()

    def discard(self) -> None:
        for cache in self.caches():
            cache.discard()
        self.audit_rows.clear()
        self._target_keys.clear()

    def apply(self, c: Cursor, events: list[StoredEvent]) -> None:
        """Apply one page of events (the caller flushes and commits)."""
        self._c = c
        handlers = self._handlers
        for e in events:
            handler = handlers.get(e.type)
            if handler is not None:
                self._pos = e.position
                self._seq = 0
                handler(self, e, self.decode(e.payload))
                self._remap_waiting()

    def _remap_waiting(self) -> None:
        """Re-map records that waited for a link created by this event (in a fixed order)."""
        assert self._c is not None
        while self._requeue:
            stream = self._requeue.pop(0)
            rec = self.records.get(self._c, stream)
            if rec is not None and not rec["deleted"]:
                self._map(
                    stream,
                    rec["system"],
                    rec["object"],
                    rec["key"],
                    json.loads(rec["record"]),
                    rec["source_time"],
                    rec["captured_at"],
                )

    # -- lookups for mapping rules (the Lookup protocol) ----------------------------------------

    def bind(self, c: Cursor) -> Fold:
        """This fold as a mapping Lookup over its tables, through cursor `c` (read-only use)."""
        self._c = c
        return self

    def canonical_id(self, entity: str, system: str, object: str, key: str) -> str | None:
        assert self._c is not None
        link = self.links.get(self._c, (system, object, str(key)))
        if link is None:
            self._misses.append((system, object, str(key)))
            return None
        cid = str(link["canonical_id"])
        if cid.startswith(entity + "/"):
            return cid
        raise linked_elsewhere(entity, system, object, str(key), cid)

    def target_key(self, system: str, canonical_id: str) -> str | None:
        assert self._c is not None
        if (system, canonical_id) in self._target_keys:
            # answer from the table, whatever the page boundaries (a rebuild folds in other
            # pages than catch-up): the first key by object and key, not the first linked
            self.links.flush(self._c)
            self._target_keys.clear()
        self._c.execute(
            f"SELECT key FROM {self.t_links} WHERE canonical_id=? AND system=? ORDER BY object, key LIMIT 1",
            (canonical_id, system),
        )
        r = self._c.fetchone()
        return None if r is None else str(r[0])

    def _link(self, system: str, obj: str, key: str, cid: str, role: str) -> None:
        self.links.put(
            (system, obj, key),
            {
                "system": system,
                "object": obj,
                "key": key,
                "canonical_id": cid,
                "role": role,
                "position": self._pos,
            },
        )
        self._target_keys.add((system, cid))
        if (system, obj, key) in self._waiting_keys:
            assert self._c is not None
            self._waiting_keys.discard((system, obj, key))
            self.waiting.flush(self._c)
            self._c.execute(
                f"SELECT stream FROM {self.t_waiting} WHERE system=? AND object=? AND key=? ORDER BY stream",
                (system, obj, key),
            )
            streams = [r[0] for r in self._c.fetchall()]
            for stream in streams:
                self.waiting.put((system, obj, key, stream), None)
                if stream not in self._requeue:
                    self._requeue.append(stream)

    def _unlink(self, system: str, obj: str, key: str, cid: str) -> None:
        """Drop the target link system/obj/key → cid (its record was deleted), so that a later
        write to that target creates a record instead of updating the deleted one."""
        assert self._c is not None
        link = self.links.get(self._c, (system, obj, key))
        if link is not None and link["canonical_id"] == cid and link["role"] == "target":
            self.links.put((system, obj, key), None)
            self.links.flush(self._c)  # target_key reads the table
            self._target_keys.clear()

    def canonical_field(self, canonical_id: str, field: str) -> Any:
        assert self._c is not None
        row = self.canon.get(self._c, canonical_id)
        if row is None or row["deleted"]:
            return None
        fields = json.loads(row["fields"])
        return fields if field == "*" else fields.get(field)

    # -- source changes -------------------------------------------------------------------------

    def _on_source(self, e: StoredEvent, d: dict[str, Any]) -> None:
        assert self._c is not None
        _, system, obj, key = e.stream.split("/", 3)
        after = d["after"]
        deleted = after is None
        source_time = micros(d["source_time"])
        captured_at = micros(d["captured_at"])
        row = {
            "stream": e.stream,
            "system": system,
            "object": obj,
            "key": key,
            "record": None if deleted else dumps(to_json(after)),
            "deleted": int(deleted),
            "position": e.position,
            "source_time": source_time,
            "captured_at": captured_at,
        }
        self.records.put(e.stream, row)
        self._resolve_open(e.stream, ("quarantine",), "auto: a later valid change was captured")
        self._map(e.stream, system, obj, key, after, source_time, captured_at)

    def _map(
        self,
        stream: str,
        system: str,
        obj: str,
        key: str,
        record: MappingT[str, Any] | None,
        source_time: int | None,
        captured_at: int | None,
    ) -> None:
        assert self._c is not None
        mapping = self.mapping
        rule = mapping.inbound(system, obj) if mapping is not None else None
        if rule is None or mapping is None:
            if mapping is not None:  # a version without its rule: nothing left to fix
                self._resolve_open(
                    stream,
                    ("mapping",),
                    f"auto: no rule maps {system}/{obj} any more (mapping version "
                    f"{mapping.version}); its entities keep their last state",
                )
            return
        link = self.links.get(self._c, (system, obj, key))
        lineage = (system, obj, key, mapping.version, source_time, captured_at)
        try:
            if record is None or rule.is_delete(record, self, key):
                if link is not None:
                    self._delete_entity(str(link["canonical_id"]), rule.entity, lineage)
                self._resolve_open(stream, ("mapping",), "auto: the record was deleted")
                return
            self._misses.clear()
            mapped = rule.apply(key, record, self)
        except MappingError as err:
            for miss in self._misses:
                self._waiting_keys.add(miss)
                self.waiting.put(
                    (*miss, stream),
                    {"system": miss[0], "object": miss[1], "key": miss[2], "stream": stream},
                )
            self._open_mapping_exception(stream, rule, key, err, mapping.version, record)
            return
        cid = mapped.canonical_id
        stored, bad = self.types.stored(rule.entity, mapped.fields)
        if bad is not None:
            value = mapped.fields[bad]
            problem = self.types.problem(rule.entity, bad, value) or f"{bad} does not fit"
            invalid = MappingError(problem, field=bad, rule="canonical schema", value=value)
            self._open_mapping_exception(stream, rule, key, invalid, mapping.version, record)
            return
        if link is None or link["canonical_id"] != cid or link["role"] != "source":
            self._link(system, obj, key, cid, "source")
            if link is not None and link["role"] == "source" and link["canonical_id"] != cid:
                self._moved_away(str(link["canonical_id"]), lineage)
        owned_fields = self._owned.get(rule)
        if owned_fields is None:
            owned_fields = self._owned[rule] = frozenset(
                name
                for name, _ in rule.fields
                if mapping.owner(rule.entity, name) in (None, system)
            )
        owned = {f: v for f, v in stored.items() if f in owned_fields}
        self._set_fields(cid, rule.entity, mapped.natural_id, owned, lineage)
        self._resolve_open(stream, ("mapping",), NOW_MAPS)

    def _set_fields(
        self,
        cid: str,
        entity: str,
        natural_id: str,
        fields: dict[str, Any],
        lineage: tuple[str, str, str, int, int | None, int | None],
    ) -> None:
        assert self._c is not None and self.mapping is not None
        row = self.canon.get(self._c, cid)
        if (
            row is not None
            and row["deleted"]
            and self.mapping.owner(entity, "*")
            not in (
                None,
                lineage[0],
            )
        ):
            return  # only the system of record restores an entity it deleted
        if row is None or row["deleted"]:
            op = "create" if row is None else "restore"
            old: dict[str, Any] = {}
        else:
            op = "update"
            old = json.loads(row["fields"])
        changed = {f: v for f, v in fields.items() if f not in old or old[f] != v}
        if not changed and op == "update":
            return
        changed_json = dumps(changed)
        self.canon.put(
            cid,
            {
                "canonical_id": cid,
                "entity": entity,
                "natural_id": natural_id,
                "fields": dumps({**old, **changed}) if old else changed_json,
                "deleted": 0,
                "changes": (row["changes"] if row else 0) + 1,
                "mapping_version": lineage[3],
                "position": self._pos,
            },
        )
        self._audit(
            cid,
            entity,
            op,
            None if op != "update" else dumps({f: old[f] for f in changed if f in old}),
            changed_json,
            lineage,
        )
        if op == "restore":
            self._remap_others(cid, lineage)

    def _sources_of(self, cid: str) -> list[tuple[str, str, str]]:
        """(system, object, key) of the source records linked to `cid`, in that order."""
        assert self._c is not None
        self.links.flush(self._c)
        self._c.execute(
            f"SELECT system, object, key FROM {self.t_links}"
            " WHERE canonical_id=? AND role='source' ORDER BY system, object, key",
            (cid,),
        )
        return [(r[0], r[1], r[2]) for r in self._c.fetchall()]

    def _remap_others(
        self, cid: str, lineage: tuple[str, str, str, int, int | None, int | None]
    ) -> None:
        """Re-map the other source records of a restored entity (after this event), so the
        fields their systems own come back as those records are now — changes made while the
        entity was deleted included — instead of waiting for those records to change again."""
        assert self._c is not None
        for system, obj, key in self._sources_of(cid):
            stream = f"source/{system}/{obj}/{key}"
            if (system, obj, key) != lineage[:3] and stream not in self._requeue:
                self._requeue.append(stream)

    def _moved_away(
        self, old: str, lineage: tuple[str, str, str, int, int | None, int | None]
    ) -> None:
        """A source record now maps to another canonical id (a new natural id, e.g. under a new
        mapping version): the entity it made before is deleted when no other source record
        still maps to it and the system is its system of record — else it would live on as a
        duplicate, in canonical state and in every target."""
        self._delete_entity(old, old.split("/", 1)[0], lineage)

    def _delete_entity(
        self,
        cid: str,
        entity: str,
        lineage: tuple[str, str, str, int, int | None, int | None],
    ) -> None:
        """Delete `cid` for the source record in `lineage` (deleted, or mapping elsewhere now),
        unless its system is not the system of record, or another live record of a system
        that may delete it still maps to it (e.g. an ERP employee whose login was deleted)."""
        assert self._c is not None and self.mapping is not None
        owner = self.mapping.owner(entity, "*")
        if owner not in (None, lineage[0]):
            return  # only the system of record deletes an entity
        row = self.canon.get(self._c, cid)
        if row is None or row["deleted"]:
            return
        for system, obj, key in self._sources_of(cid):
            if (system, obj, key) == lineage[:3] or owner not in (None, system):
                continue
            if self._live(system, obj, key):
                return  # still there, in a system that could delete it
        self.canon.put(
            cid, {**row, "deleted": 1, "changes": row["changes"] + 1, "position": self._pos}
        )
        self._audit(cid, row["entity"], "delete", None, None, lineage)

    def _live(self, system: str, obj: str, key: str) -> bool:
        """Whether source record system/obj/key exists and its rule does not call it deleted."""
        assert self._c is not None and self.mapping is not None
        rec = self.records.get(self._c, f"source/{system}/{obj}/{key}")
        rule = self.mapping.inbound(system, obj)
        if rec is None or rec["deleted"] or rule is None:
            return False
        try:
            return not rule.is_delete(json.loads(rec["record"]), self, key)
        except MappingError:
            return True  # not known to be deleted

    def _audit(
        self,
        cid: str,
        entity: str,
        op: str,
        old: str | None,
        new: str | None,
        lineage: tuple[str, str, str, int, int | None, int | None],
    ) -> None:
        """One audit row: `old`/`new` are the changed fields' JSON objects (see audit.AUDIT)."""
        self._seq += 1
        self.audit_rows.append((self._pos, self._seq, cid, entity, op, old, new, *lineage))

    # -- mapping deployments --------------------------------------------------------------------

    def _on_mapping(self, e: StoredEvent, d: dict[str, Any]) -> None:
        assert self._c is not None
        try:
            mapping = Mapping.from_dict(json.loads(d["spec"]), version=int(d["version"]))
        except MappingSpecError:
            return  # deploy validates first; an invalid historic spec changes nothing
        self.deploy(self._c, mapping, e.position, spec=d["spec"], digest=d["digest"])

    def deploy(
        self,
        c: Cursor,
        mapping: Mapping,
        position: int,
        spec: str | None = None,
        digest: str | None = None,
    ) -> None:
        """Make `mapping` active at `position` and re-map every source record under it."""
        self._c = c
        self._pos = position
        self.mappings.put(
            mapping.version,
            {
                "version": mapping.version,
                "name": mapping.name,
                "spec": spec if spec is not None else json.dumps(mapping.spec, sort_keys=True),
                "digest": digest if digest is not None else mapping.digest,
                "position": position,
            },
        )
        self.mapping = mapping
        self._owned.clear()
        # Re-project every source record under the new version, in a deterministic order.
        # What waits for a link is found again: the new rules may need other links, or none.
        self.flush(self._c)
        self._c.execute(f"DELETE FROM {self.t_waiting}")
        self.waiting.discard()
        self._waiting_keys.clear()
        self._c.execute(
            f"SELECT stream, system, object, key, record, source_time, captured_at"
            f" FROM {self.t_records} WHERE deleted=0 ORDER BY stream"
        )
        for stream, system, obj, key, record, st, ca in self._c.fetchall():
            self._map(stream, system, obj, key, json.loads(record), st, ca)
        self._remap_waiting()

    # -- exceptions -----------------------------------------------------------------------------

    def _open(self, xid: str, values: dict[str, Any]) -> None:
        assert self._c is not None
        row = self.exceptions.get(self._c, xid)
        if row is not None and row["status"] in OPEN:
            self.exceptions.put(
                xid,
                {
                    **row,
                    **values,
                    "status": "open",
                    "position": self._pos,
                    "occurrences": row["occurrences"] + 1,
                },
            )
            return
        self._open_subjects.add(values["subject"])
        self.exceptions.put(
            xid,
            {
                "id": xid,
                "status": "open",
                "entity": None,
                "canonical_id": None,
                "system": None,
                "object": None,
                "key": None,
                "field": None,
                "rule": None,
                "mapping_version": None,
                "details": None,
                "resolution": None,
                **values,
                "first_position": self._pos,
                "position": self._pos,
                "occurrences": 1,
            },
        )

    def _resolve_open(self, subject: str, kinds: tuple[str, ...], note: str) -> None:
        if subject not in self._open_subjects:
            return
        still_open = False
        for row in self._open_for(subject):
            if row["kind"] in kinds:
                self.exceptions.put(
                    row["id"],
                    {**row, "status": "resolved", "resolution": note, "position": self._pos},
                )
            else:
                still_open = True
        if not still_open:
            self._open_subjects.discard(subject)

    def _open_for(self, subject: str) -> list[dict[str, Any]]:
        assert self._c is not None
        self.exceptions.flush(self._c)
        self._c.execute(
            f"SELECT id FROM {self.t_exceptions} WHERE subject=? AND status IN ('open','retrying')",
            (subject,),
        )
        ids = [r[0] for r in self._c.fetchall()]
        return [row for xid in ids if (row := self.exceptions.get(self._c, xid)) is not None]

    def _open_mapping_exception(
        self,
        stream: str,
        rule: InboundRule,
        key: str,
        err: MappingError,
        version: int,
        record: MappingT[str, Any] | None,
    ) -> None:
        self._open(
            exception_id("mapping", stream),
            {
                "kind": "mapping",
                "subject": stream,
                "entity": rule.entity,
                "system": rule.system,
                "object": rule.object,
                "key": key,
                "field": err.field,
                "rule": err.rule,
                "mapping_version": version,
                "message": f"{rule.system}/{rule.object} record {key!r} cannot be mapped to "
                f"{rule.entity}: {err}",
                "fix": (
                    f"it is re-mapped by itself once {'/'.join(self._misses[-1])} is captured; "
                    "if that never happens, "
                    if self._misses
                    else ""
                )
                + f"correct the record in {rule.system}, or fix rule {err.field!r} in the "
                "mapping and deploy it (every record is re-mapped), or `synchub exceptions "
                "retry <id>`",
                "details": dumps({"value": to_json(err.value), "record": to_json(record)}),
            },
        )

    def _on_quarantine(self, e: StoredEvent, d: dict[str, Any]) -> None:
        subject = (
            f"source/{d['system']}/{d['object']}/{d['key']}"
            if d["key"]
            else f"{e.stream}@{e.version}"
        )
        self._open(
            exception_id(
                "quarantine", subject, d["kind"], d["field"], d["reason"] if not d["key"] else ""
            ),
            {
                "kind": "quarantine",
                "subject": subject,
                "system": d["system"],
                "object": d["object"],
                "key": d["key"],
                "field": d["field"],
                "rule": d["kind"],
                "message": d["reason"],
                "fix": d["fix"],
                "details": dumps(
                    {
                        "raw": d["raw"],
                        "position": d["position"],
                        "connector": d["connector"],
                        "event": f"{e.stream}@{e.version}",
                    }
                ),
            },
        )

    def _on_action(self, e: StoredEvent, d: dict[str, Any]) -> None:
        assert self._c is not None
        row = self.exceptions.get(self._c, d["exception_id"])
        if row is None:
            return
        action = d["action"]
        note = f"{action} by {d['by']}" + (f": {d['note']}" if d["note"] else "")
        if action in ("resolve", "ignore"):
            status = "resolved" if action == "resolve" else "ignored"
            self.exceptions.put(
                row["id"], {**row, "status": status, "resolution": note, "position": self._pos}
            )
            if row["kind"] == "write":  # the failed write is settled: no longer `failed`
                key = tuple(json.loads(row["details"])["outbound"])
                ob = self.outbound.get(self._c, key)
                if ob is not None and ob["status"] == "failed":
                    self.outbound.put(key, {**ob, "status": status, "position": self._pos})
            return
        self.exceptions.put(
            row["id"], {**row, "status": "retrying", "resolution": note, "position": self._pos}
        )
        self._open_subjects.add(row["subject"])
        if row["kind"] == "mapping":
            rec = self.records.get(self._c, row["subject"])
            if rec is not None and not rec["deleted"]:
                self._map(
                    rec["stream"],
                    rec["system"],
                    rec["object"],
                    rec["key"],
                    json.loads(rec["record"]),
                    rec["source_time"],
                    rec["captured_at"],
                )
        elif row["kind"] == "write":
            target, obj, cid = json.loads(row["details"])["outbound"]
            ob = self.outbound.get(self._c, (target, obj, cid))
            if ob is not None and ob["status"] == "failed":
                self.outbound.put(
                    (target, obj, cid),
                    {**ob, "status": "pending", "attempts": 0, "position": self._pos},
                )

    # -- outbound -------------------------------------------------------------------------------

    def _on_planned(self, e: StoredEvent, d: dict[str, Any]) -> None:
        assert self._c is not None
        key = (d["target"], d["object"], d["canonical_id"])
        self._resolve_open(f"outbound/{key[0]}/{key[1]}/{key[2]}", ("plan",), "auto: planned")
        old = self.outbound.get(self._c, key)
        self.outbound.put(
            key,
            {
                "target": d["target"],
                "object": d["object"],
                "canonical_id": d["canonical_id"],
                "status": "pending",
                "op": d["op"],
                "idempotency_key": d["idempotency_key"],
                "target_key": d["target_key"],
                "fields": d["fields"],
                "desired": d["desired"],
                "mapping_version": d["mapping_version"],
                "attempts": 0,
                "last_error": None,
                "retry_after": None,
                "last_attempt_at": None,
                "applied_desired": old["applied_desired"] if old else None,
                "applied_key": old["applied_key"] if old else None,
                "planned_position": e.position,
                "position": e.position,
            },
        )

    def _on_attempt(self, e: StoredEvent, d: dict[str, Any]) -> None:
        assert self._c is not None
        key = (d["target"], d["object"], d["canonical_id"])
        row = self.outbound.get(self._c, key)
        subject = f"outbound/{d['target']}/{d['object']}/{d['canonical_id']}"
        if row is None or row["idempotency_key"] != d["idempotency_key"]:
            return  # an attempt of a superseded plan
        status = d["status"]
        base = {
            **row,
            "attempts": d["attempt"],
            "last_attempt_at": micros(d["at"]),
            "position": e.position,
        }
        if status == "applied":
            applied_key = d["target_key"] or row["target_key"]
            self.outbound.put(
                key,
                {
                    **base,
                    "status": "applied",
                    "last_error": None,
                    "applied_desired": row["desired"] if row["op"] != "delete" else None,
                    "applied_key": applied_key if row["op"] != "delete" else None,
                    "target_key": applied_key,
                },
            )
            if applied_key and row["op"] != "delete":
                self._link(d["target"], d["object"], applied_key, d["canonical_id"], "target")
            elif applied_key:  # the target record is gone: so is its identity link
                self._unlink(d["target"], d["object"], applied_key, d["canonical_id"])
            self._resolve_open(subject, ("write",), "auto: a later write was applied")
        elif status == "retryable":
            self.outbound.put(
                key,
                {
                    **base,
                    "status": "retrying",
                    "last_error": d["reason"],
                    "retry_after": d["retry_after"],
                },
            )
        else:
            self.outbound.put(key, {**base, "status": "failed", "last_error": d["reason"]})
            entity = d["canonical_id"].split("/", 1)[0]
            self._open(
                exception_id("write", subject),
                {
                    "kind": "write",
                    "subject": subject,
                    "entity": entity,
                    "canonical_id": d["canonical_id"],
                    "system": d["target"],
                    "object": d["object"],
                    "key": row["target_key"],
                    "rule": f"outbound {d['target']}/{d['object']}",
                    "mapping_version": row["mapping_version"],
                    "message": f"{d['target']} refused to {row['op']} {d['object']} for "
                    f"{d['canonical_id']} (attempt {d['attempt']}): {d['reason']}",
                    "fix": "fix the data or the target's rule that refused it, then "
                    "`synchub exceptions retry <id>`; or `resolve` if fixed by hand",
                    "details": dumps(
                        {
                            "outbound": list(key),
                            "fields": json.loads(row["fields"]),
                            "idempotency_key": row["idempotency_key"],
                        }
                    ),
                },
            )

    def _on_plan_failed(self, e: StoredEvent, d: dict[str, Any]) -> None:
        subject = f"outbound/{d['target']}/{d['object']}/{d['canonical_id']}"
        message, fix = plan_failure_text(
            d["target"], d["object"], d["canonical_id"], d["field"], d["reason"]
        )
        self._open(
            exception_id("plan", subject),
            {
                "kind": "plan",
                "subject": subject,
                "entity": d["canonical_id"].split("/", 1)[0],
                "canonical_id": d["canonical_id"],
                "system": d["target"],
                "object": d["object"],
                "field": d["field"],
                "rule": d["rule"],
                "mapping_version": d["mapping_version"],
                "message": message,
                "fix": fix,
                "details": None,
            },
        )

    _handlers: dict[str, Callable[[Fold, StoredEvent, Any], None]] = {
        "PlanFailed": _on_plan_failed,
        "SourceChanged": _on_source,
        "MappingDeployed": _on_mapping,
        "RecordQuarantined": _on_quarantine,
        "ExceptionAction": _on_action,
        "DeltaPlanned": _on_planned,
        "WriteAttempted": _on_attempt,
    }
