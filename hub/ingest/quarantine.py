"""Quarantine: input that cannot become a fact, kept verbatim with why and how to fix it.

A change that is undecodable, invalid, oversize, of an unlisted object or of an object whose
schema changed incompatibly raises `Quarantine` while its batch is prepared; the ingestor turns
it into a RecordQuarantined event in `quarantine/<connector>` (`QuarantineLog`), appended in the
same transaction as the batch's facts and checkpoint: the hub keeps going, nothing is
half-applied. The exceptions projection shows each one; `synchub exceptions retry` re-ingests it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from hub.errors import ValidationError
from hub.ingest.envelope import now_micros, printable
from hub.schemas import hub_schema
from hub.store.base import EventStore, NewEvent
from hub.store.streams import EventType, quarantine_stream
from hub.types import Change

__all__ = ["Quarantine", "QuarantineLog", "check_sizes", "storable"]


class Quarantine(Exception):
    """A change that cannot become a fact: `kind` (decode, schema, validation, oversize), the
    reason (the message), how to `fix` it, and the `field` at fault if one is."""

    def __init__(self, kind: str, message: str, fix: str, field: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.fix = fix
        self.field = field


class QuarantineLog:
    """A connector's quarantined input: the records, and their events numbered in its stream.

    The stream's version is cached between batches; `forget` drops it after a failed append
    (another process may have appended meanwhile), so it is read again from the store."""

    def __init__(self, store: EventStore, connector: str, system: str) -> None:
        self.store = store
        self.connector = connector
        self.system = system
        self.stream = quarantine_stream(connector)
        self.codec = store.codec
        self._schema = hub_schema("record_quarantined")
        self.codec.add(self._schema)
        self._version: int | None = None

    def forget(self) -> None:
        self._version = None

    def record(
        self, change: Change, kind: str, reason: str, fix: str, field_name: str | None
    ) -> dict[str, Any]:
        """The RecordQuarantined payload of `change`."""
        raw = change.raw
        if raw is None:
            raw = json.dumps(change.record, sort_keys=True, default=str)
        return {
            "connector": self.connector,
            "system": self.system,
            "object": change.object,
            "key": change.key or None,
            "kind": kind,
            "field": field_name,
            "reason": printable(reason),
            "fix": fix,
            "raw": printable(raw),
            "position": change.position,
            "at": now_micros(),
        }

    def of(self, change: Change, q: Quarantine) -> dict[str, Any]:
        return self.record(change, q.kind, str(q), q.fix, q.field)

    def invalid(self, change: Change, e: ValidationError) -> dict[str, Any]:
        return self.record(
            change,
            "validation",
            f"{self.system}/{change.object} record {change.key!r} at {change.position or '?'}: {e}",
            "correct the record in the source (or the declared field type in the "
            "connector config), then `synchub exceptions retry <id>`",
            e.field,
        )

    def events(self, records: list[dict[str, Any]]) -> list[NewEvent]:
        """The RecordQuarantined events of `records`, numbered after the stream's head."""
        if not records:
            return []
        if self._version is None:
            last = self.store.last(self.stream)
            self._version = 0 if last is None else last.version
        out = []
        for r in records:
            self._version += 1
            out.append(
                NewEvent(
                    self.stream,
                    self._version,
                    EventType.RECORD_QUARANTINED.value,
                    self.codec.encode(self._schema, r),
                )
            )
        return out

    # -- why a change cannot become a fact ------------------------------------------------------

    def undecodable(self, change: Change) -> Quarantine:
        return Quarantine(
            "decode",
            f"{self.system}/{change.object} input at {change.position or '?'}: {change.error}",
            "fix or remove the input in the source; it was kept verbatim in the quarantine",
        )

    def unlisted(self, change: Change) -> Quarantine:
        return Quarantine(
            "schema",
            f"{self.system} sent a change of object {change.object!r}, which its discover() "
            "did not list",
            f"declare object {change.object!r} in connector {self.connector}'s config",
        )

    def unknown_field(
        self, change: Change, names: frozenset[str], record: Mapping[str, Any]
    ) -> Quarantine:
        """A record with a field its object's schema (`names`) lacks: encoding would drop the
        value."""
        name = sorted(set(record) - names)[0]
        return Quarantine(
            "schema",
            f"{self.system}/{change.object} record {change.key!r} at {change.position or '?'} "
            f"has field {name!r}, which the object's schema lacks (it has "
            f"{', '.join(sorted(names))}): stored as it is, the value would be lost",
            f"declare {name!r} in connector {self.connector}'s schema for {change.object} (file "
            f"drop: `objects.{change.object}.fields`), or stop the source sending it; then "
            "`synchub exceptions retry <id>`",
            name,
        )


def storable(changes: list[Change]) -> list[Change]:
    """`changes` with every key and position storable as UTF-8 text (stream names, envelope
    strings). A position that is not (e.g. a file name in Latin-1) is stored escaped; a key that
    is not (a Latin-1 byte, a JSON "\\ud800" escape) cannot name a record: the change becomes an
    undecodable input, quarantined under its escaped key."""
    for i, c in enumerate(changes):
        if c.key.isascii() and c.position.isascii():
            continue
        key, position = printable(c.key), printable(c.position)
        if key == c.key and position == c.position:
            continue
        error = c.error
        if key != c.key and error is None:
            error = (
                f"the key {key!r} is not valid Unicode text (an undecodable byte or a lone "
                "surrogate); export the source as UTF-8 or fix the key"
            )
        changes[i] = replace(c, key=key, position=position, error=error)
    return changes


def check_sizes(record: Mapping[str, Any], max_bytes: int) -> None:
    """Raise Quarantine for the first text or bytes field longer than `max_bytes` (UTF-8)."""
    for name, value in record.items():
        if isinstance(value, str | bytes) and len(value) > max_bytes // 4:
            size = (
                len(value.encode("utf-8", "surrogatepass"))
                if isinstance(value, str)
                else len(value)
            )
            if size > max_bytes:
                raise Quarantine(
                    "oversize",
                    f"field {name!r} is {size} bytes, more than ingest.max_field_bytes ({max_bytes})",
                    "shorten the value in the source, or raise ingest.max_field_bytes in the config",
                    name,
                )
