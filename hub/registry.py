"""Source-object schemas: which version is current, and the backward-compatibility rule.

A connector re-discovers its schemas on every pass. For each (system, object) the registry
keeps the current envelope schema; a discovered record schema that differs becomes a new
version only if it can read everything written with the current one (backward compatible).
State is rebuilt from the store's schema table (in acceptance order) when the hub starts.
"""

from __future__ import annotations

import json
from typing import Any

from hub.avro import Schema
from hub.schemas import avro_name, check_backward, envelope_schema, record_schema_of
from hub.store.base import EventStore


class SourceSchemas:
    """Current envelope schema per source object; accepts compatible new versions."""

    def __init__(self, store: EventStore) -> None:
        self._store = store
        self._current: dict[str, Schema] = {}
        for _fp, name, text in store.schemas():
            if name.startswith("synchub.source.") and name.endswith(".Changed"):
                self._current[name] = store.codec.add(Schema.from_json(text))

    @staticmethod
    def _subject(system: str, obj: str) -> str:
        return f"synchub.source.{avro_name(system)}.{avro_name(obj)}.Changed"

    def current(self, system: str, obj: str) -> Schema | None:
        return self._current.get(self._subject(system, obj))

    def accept(self, system: str, obj: str, record: dict[str, Any]) -> Schema:
        """The envelope for `record`'s schema; raises IncompatibleSchemaError on a breaking change."""
        subject = self._subject(system, obj)
        envelope = envelope_schema(system, obj, record)
        current = self._current.get(subject)
        if current is not None and current.fingerprint == envelope.fingerprint:
            return current
        if current is not None:
            old = record_schema_of(current)
            new = record_schema_of(envelope)
            check_backward(new, old, f"{system}/{obj}")
        envelope = self._store.codec.add(envelope)
        self._current[subject] = envelope
        return envelope

    def versions(self, system: str, obj: str) -> list[dict[str, Any]]:
        """Every stored record schema of one object, oldest first."""
        subject = self._subject(system, obj)
        return [
            record_schema_of(Schema.from_json(text))
            for _fp, name, text in self._store.schemas()
            if name == subject
        ]


def schema_summary(record: dict[str, Any]) -> str:
    """`a:long, b:string?` — a one-line description of a record schema for messages."""
    parts = []
    for f in record.get("fields", []):
        t = f["type"]
        nullable = isinstance(t, list) and "null" in t
        base = next(x for x in t if x != "null") if isinstance(t, list) else t
        parts.append(
            f"{f['name']}:{base if isinstance(base, str) else json.dumps(base)}{'?' if nullable else ''}"
        )
    return ", ".join(parts)
