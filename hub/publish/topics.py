"""The topic contract: names, Avro schemas and encodings of what synchub publishes.

Per canonical entity (`TimeEntry` → `time_entry`):

- `<prefix><entity>` (default `canonical.time_entry`): every change, in store order per key.
  Value: a `<Entity>Change` record — `op` (create | update | delete | restore), the
  `canonical_id`, the store `position`, the `changed` field names, and the entity's whole
  state `before` and `after` (null before a create, after a delete).
- `<prefix><entity>.state`: compacted, the latest state per key: an `<Entity>` record, or a
  tombstone (null value) once deleted.

The records are the canonical schema of the entity with every field optional (a canonical
entity can lack fields its other systems have not sent yet), in namespace `synchub.topics`.
Values are Avro single-object encoded (`C3 01`, the writer schema's 8-byte CRC-64-AVRO
fingerprint, the body): any consumer holding the `.avsc` (`synchub topics --avsc DIR`, or
schemas/topics/ for the built-in entities) computes the fingerprint and decodes. With a schema
registry configured, in the Confluent wire format instead (hub.publish.registry).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import io
import re
from collections.abc import Callable
from functools import cache
from typing import Any

import fastavro

from hub.avro import MAGIC, Schema
from hub.canonical_schemas import CanonicalSchemas
from hub.codec.encoder import AvroBodyEncoder
from hub.errors import SyncHubError
from hub.publish.batch_encoder import change_body, changed_names
from hub.publish.feed import OPS
from hub.publish.stored_encoder import SLOW, StoredEncoder, Unsupported, compile_stored

__all__ = [
    "OPS",
    "TopicSchemas",
    "fingerprint",
    "snake",
]

NAMESPACE = "synchub.topics"
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


@cache
def snake(entity: str) -> str:
    """`TimeEntry` → `time_entry` (topic names, like the BI views' names)."""
    return _CAMEL.sub("_", entity).lower()


def _optional(field: dict[str, Any]) -> dict[str, Any]:
    kind = field["type"]
    if isinstance(kind, list):
        kind = kind if kind[0] == "null" else ["null", *(k for k in kind if k != "null")]
    else:
        kind = ["null", kind]
    out = {k: v for k, v in field.items() if k not in ("type", "default")}
    return {**out, "type": kind, "default": None}


def state_schema(canonical: Schema) -> dict[str, Any]:
    """The published state record of an entity: its canonical schema, every field optional."""
    parsed = canonical.parsed
    entity = parsed["name"].rsplit(".", 1)[-1]
    source = _plain(canonical)
    return {
        "type": "record",
        "name": entity,
        "namespace": NAMESPACE,
        "doc": source.get("doc", entity) + " (as published: every field optional)",
        "fields": [_optional(f) for f in source["fields"]],
    }


def change_schema(canonical: Schema) -> dict[str, Any]:
    """The published change record of an entity (see the module's doc)."""
    state = state_schema(canonical)
    entity = state["name"]
    return {
        "type": "record",
        "name": f"{entity}Change",
        "namespace": NAMESPACE,
        "doc": f"One change of a canonical {entity}, in store order per canonical id.",
        "fields": [
            {
                "name": "op",
                "type": {"type": "enum", "name": f"{entity}Op", "symbols": list(OPS)},
                "doc": "create, update, delete, or restore (a deleted entity back).",
            },
            {"name": "canonical_id", "type": "string", "doc": "The entity's canonical id."},
            {"name": "position", "type": "long", "doc": "Store position of the cause."},
            {
                "name": "changed",
                "type": {"type": "array", "items": "string"},
                "doc": "Names of the fields this change set (empty for a delete).",
            },
            {"name": "before", "type": ["null", state], "default": None, "doc": "State before."},
            {"name": "after", "type": ["null", entity], "default": None, "doc": "State after."},
        ],
    }


def _plain(schema: Schema) -> dict[str, Any]:
    """The schema as written (its JSON), not fastavro's parsed form."""
    import json

    out: dict[str, Any] = json.loads(schema.json)
    return out


def fingerprint(schema: Schema) -> bytes:
    """The schema's CRC-64-AVRO fingerprint, little-endian, as the Avro spec's single-object
    encoding (and Java's SchemaNormalization) has it on the wire."""
    return schema.fingerprint


# -- values: the stored JSON form → Avro datums -------------------------------------------------

Convert = Callable[[Any], Any]
_EPOCH_DAY = dt.date(1970, 1, 1).toordinal()


def _date(v: Any) -> Any:
    """ISO text → days since the epoch (what the date logical type holds: the generated
    encoder takes ints, not dates)."""
    return dt.date.fromisoformat(v).toordinal() - _EPOCH_DAY if isinstance(v, str) else v


def _timestamp(v: Any) -> Any:
    return dt.datetime.fromisoformat(v) if isinstance(v, str) else v


def _decimal(v: Any) -> Any:
    return decimal.Decimal(str(v))


def _converter(kind: Any) -> Convert | None:
    """How a stored value (hub.values.to_json form) of Avro type `kind` becomes a datum (None:
    as it is)."""
    if isinstance(kind, list):
        branches = [_converter(k) for k in kind if k != "null"]
        inner = branches[0] if len(branches) == 1 else None
        return None if inner is None else (lambda v: None if v is None else inner(v))
    if isinstance(kind, dict):
        logical = kind.get("logicalType")
        if logical == "date":
            return _date
        if logical in ("timestamp-millis", "timestamp-micros"):
            return _timestamp
        if logical == "decimal":
            return _decimal
        if kind.get("type") == "array":
            item = _converter(kind["items"])
            return None if item is None else (lambda v: [item(x) for x in v])
        if kind.get("type") == "map":
            value = _converter(kind["values"])
            return None if value is None else (lambda v: {k: value(x) for k, x in v.items()})
        if kind.get("type") == "record":
            return _record_converter(kind)
    return None


def _record_converter(record: dict[str, Any]) -> Convert:
    """Stored fields → a datum of `record`: every field present (None when missing), the
    values that need it converted."""
    template = dict.fromkeys(f["name"] for f in record["fields"])
    special = [(f["name"], c) for f in record["fields"] if (c := _converter(f["type"]))]

    def convert(value: dict[str, Any]) -> dict[str, Any]:
        out = template.copy()
        out.update(value)
        for name, conv in special:
            v = out[name]
            if v is not None:
                out[name] = conv(v)
        return out

    return convert


_WIRE = b"\x00"
"""The Confluent wire format's magic byte (then a 4-byte schema id)."""


class TopicSchemas:
    """The published schemas of the entities in force, with their encoders and decoders.

    A change's value is assembled from the Avro bodies of its states (a record's encoding is
    its fields' in order), so the `after` state is encoded once for both topics (measured:
    encoding was most of the publisher's time, bench/publish.py)."""

    def __init__(self, canonical: CanonicalSchemas) -> None:
        self.canonical = canonical
        self._by_fingerprint: dict[bytes, Schema] = {}
        self._states: dict[str, tuple[Schema, Convert, AvroBodyEncoder, bytes]] = {}
        self._stored: dict[str, StoredEncoder] = {}
        """Entity → its state body straight from the stored fields (stored_encoder.py)."""
        self._changes: dict[str, tuple[Schema, bytes]] = {}
        self._by_id: dict[int, Schema] = {}
        self.resolver: Callable[[int], Schema] | None = None
        """Finds the schema of a Confluent wire-format id it does not know (the registry)."""
        self._has_id: set[str] = set()
        self.changed_arrays: dict[tuple[str, ...], bytes] = {}
        """`changed` field names → their Avro array (the same few lists come again and
        again); at most 10,000 lists kept."""
        for entity in canonical.entities():
            latest = canonical.schema(entity)
            state = self._add(Schema.from_dict(state_schema(latest)))
            self._states[entity] = (
                state,
                _record_converter(state_schema(latest)),
                AvroBodyEncoder(state.parsed),
                MAGIC + fingerprint(state),
            )
            with contextlib.suppress(Unsupported):
                self._stored[entity] = compile_stored(state_schema(latest))
            change = self._add(Schema.from_dict(change_schema(latest)))
            self._changes[entity] = (change, MAGIC + fingerprint(change))
            if any(f["name"] == "id" for f in latest.parsed["fields"]):
                self._has_id.add(entity)

    def use_ids(self, entity: str, change_id: int, state_id: int) -> None:
        """Write `entity`'s values in the Confluent wire format (byte 0, the 4-byte schema id
        the registry gave, the body) instead of single-object encoding (hub.publish.registry)."""
        state, convert, encode, _ = self._states[entity]
        self._states[entity] = (state, convert, encode, _WIRE + state_id.to_bytes(4, "big"))
        change, _ = self._changes[entity]
        self._changes[entity] = (change, _WIRE + change_id.to_bytes(4, "big"))
        self._by_id[state_id] = state
        self._by_id[change_id] = change

    def _add(self, schema: Schema) -> Schema:
        self._by_fingerprint[fingerprint(schema)] = schema
        return schema

    def entities(self) -> list[str]:
        return sorted(self._states)

    def state(self, entity: str) -> Schema:
        return self._states[entity][0]

    def change(self, entity: str) -> Schema:
        return self._changes[entity][0]

    def datum(
        self, entity: str, canonical_id: str, fields: dict[str, Any] | None
    ) -> dict[str, Any] | None:
        """An entity's stored fields as a datum of its state record (None stays None); its
        `id` field, when it has one and no value, is the canonical id's natural part."""
        if fields is None:
            return None
        datum: dict[str, Any] = self._states[entity][1](fields)  # a new dict
        if "id" not in fields and entity in self._has_id:
            datum["id"] = canonical_id.split("/", 1)[-1]
        return datum

    def state_body(
        self, entity: str, canonical_id: str, fields: dict[str, Any] | None
    ) -> bytes | None:
        """The Avro body of an entity's state record (None for no state)."""
        if fields is None:
            return None
        fast = self._stored.get(entity)
        if fast is not None:
            try:
                return fast(fields, canonical_id.split("/", 1)[-1])
            except SLOW:
                pass  # the two steps below: their conversions, their errors
        return self.slow_state_body(entity, canonical_id, fields)

    def slow_state_body(self, entity: str, canonical_id: str, fields: dict[str, Any]) -> bytes:
        """The state body made in two steps: the datum, then the generated Avro encoder (or
        fastavro); SyncHubError when the fields cannot be a state record."""
        schema, _, encode, _ = self._states[entity]
        try:
            return encode(self.datum(entity, canonical_id, fields))  # type: ignore[arg-type]
        except (TypeError, ValueError, KeyError, AttributeError, ArithmeticError) as e:
            raise SyncHubError(
                f"cannot encode {canonical_id} as a {schema.name} for Kafka: {e}"
            ) from None

    def stored_encoder(self, entity: str) -> StoredEncoder | None:
        """The stored-form encoder of an entity's state (None: its record is not flat)."""
        return self._stored.get(entity)

    def change_prefix(self, entity: str) -> bytes:
        """What precedes a change body in a value (as `state_prefix` for states)."""
        return self._changes[entity][1]

    def state_prefix(self, entity: str) -> bytes:
        """What precedes a state body in a value: the single-object header or the Confluent
        wire format's (set by use_ids)."""
        return self._states[entity][3]

    def state_value(self, entity: str, body: bytes | None) -> bytes | None:
        """The compacted topic's value of a state body: the record, or None (a tombstone)."""
        return None if body is None else self._states[entity][3] + body

    def encode_state(
        self, entity: str, canonical_id: str, fields: dict[str, Any] | None
    ) -> bytes | None:
        """The compacted topic's value: the state record, or None (a tombstone)."""
        return self.state_value(entity, self.state_body(entity, canonical_id, fields))

    def change_value(
        self,
        entity: str,
        op: str,
        canonical_id: str,
        position: int,
        changed: list[str],
        before: bytes | None,
        after: bytes | None,
    ) -> bytes:
        """A change record from its states' bodies (see the class's doc)."""
        return change_body(
            self._changes[entity][1], op, canonical_id, position,
            changed_names(self.changed_arrays, tuple(changed)), before, after,
        )  # fmt: skip

    def encode_change(
        self,
        entity: str,
        op: str,
        canonical_id: str,
        position: int,
        changed: list[str],
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
    ) -> bytes:
        return self.change_value(
            entity,
            op,
            canonical_id,
            position,
            changed,
            self.state_body(entity, canonical_id, before),
            self.state_body(entity, canonical_id, after),
        )

    def decode(self, payload: bytes) -> Any:
        """Any published value: single-object encoded (the fingerprint names its schema) or
        in the Confluent wire format (the id does: known, or asked of the `resolver`)."""
        schema: Schema | None = None
        if payload[:2] == MAGIC:
            schema, body = self._by_fingerprint.get(payload[2:10]), 10
        elif payload[:1] == _WIRE and len(payload) >= 5:
            schema_id, body = int.from_bytes(payload[1:5], "big"), 5
            schema = self._by_id.get(schema_id)
            if schema is None and self.resolver is not None:
                schema = self._by_id[schema_id] = self.resolver(schema_id)
        if schema is None:
            raise SyncHubError(
                f"not a synchub topic value of a known schema (header {payload[:10].hex()}); "
                "values in the Confluent wire format need kafka.schema_registry.url"
            )
        return fastavro.schemaless_reader(io.BytesIO(payload[body:]), schema.parsed, None)

    def avsc(self) -> dict[str, dict[str, Any]]:
        """File name → schema, to publish for consumers: `<entity>.state.avsc`, `….change.avsc`."""
        out: dict[str, dict[str, Any]] = {}
        for entity in self.entities():
            latest = self.canonical.schema(entity)
            out[f"{snake(entity)}.state.avsc"] = state_schema(latest)
            out[f"{snake(entity)}.change.avsc"] = change_schema(latest)
        return out


@cache
def builtin() -> TopicSchemas:
    """The published schemas of synchub's own canonical entities."""
    from hub.canonical_schemas import BUILTIN

    return TopicSchemas(BUILTIN)
