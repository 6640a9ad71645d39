"""The SourceChanged envelope codec: one source record's change as Avro single-object bytes.

An envelope is `digest` (8 bytes: blake2b of the record body, or DELETED), `op`, `key`,
`position`, `source_time`, `captured_at`, `connector` and `after` (the record, null for a
delete). `Envelope` writes it faster than fastavro would, with the same bytes; `explain` turns
an encoding failure into a ValidationError that names the field. Times are integer
microseconds since the epoch (`micros`, `now_micros`).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping
from typing import Any

import fastavro

from hub.avro import MAGIC, Schema
from hub.codec.encoder import AvroBodyEncoder, avro_long
from hub.errors import ValidationError
from hub.registry import schema_summary

__all__ = [
    "CREATE",
    "DELETE",
    "DELETED",
    "OPS",
    "UPDATE",
    "Envelope",
    "avro_long",
    "envelope_tail",
    "explain",
    "micros",
    "now_micros",
    "printable",
]

DELETED = b"\x00" * 8
"""Digest of a deletion: no record."""

OPS = {"create": 0, "update": 1, "delete": 2}
"""The envelope's `op` enum: symbol → index."""
CREATE, UPDATE, DELETE = OPS.values()

_BYTE = [bytes([b]) for b in range(128)]


def micros(t: dt.datetime) -> int:
    """Microseconds since the epoch; a naive `t` is UTC."""
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return int(t.timestamp() * 1_000_000)


def now_micros() -> int:
    return time.time_ns() // 1000


class Envelope:
    """Encodes one object's changes: the record body once (for the digest), then the envelope.

    An Avro record is the concatenation of its fields' encodings and `after` is the envelope's
    last field (a union: branch 0 null, branch 1 the record), so an envelope's bytes are exactly
    header + prefix fields + branch index + body. The body is written by an encoder generated
    for the record's schema (`hub.codec.encoder`, fastavro for what it does not take); the prefix fields
    (fixed, enum, strings, longs) are laid out by `encode`, whose output is checked byte for byte
    against fastavro's in tests/unit/test_avro_and_schemas.py. This halves the per-change cost.
    """

    def __init__(self, envelope: Schema, record_schema: dict[str, Any]) -> None:
        self.envelope = envelope
        self.record = fastavro.parse_schema(record_schema)
        self._write = AvroBodyEncoder(self.record)
        self.names = frozenset(f["name"] for f in record_schema["fields"])
        """The record's field names: a field outside them would be dropped by the encoder."""
        self.header = MAGIC + envelope.fingerprint
        self.name = envelope.name

    def body(self, record: Mapping[str, Any]) -> bytes:
        """The record's Avro body (generated encoder, fastavro for what it does not take);
        ValidationError naming the field when it does not fit the schema."""
        try:
            return self._write(record)
        except (TypeError, ValueError, KeyError, AttributeError, OverflowError) as e:
            raise explain(self.record, record, e) from None

    def encode(
        self,
        digest: bytes,
        op: int,
        key: str,
        position: str,
        source_time: dt.datetime | None,
        tail: bytes,
        body: bytes | None,
    ) -> bytes:
        """The envelope of one change; `op` indexes OPS, `tail` =
        `envelope_tail(captured_at, connector)` (the same for a whole batch) and `body` is
        None for a delete."""
        return b"".join(
            (
                self.header,
                digest,
                _BYTE[op << 1],
                _str(key),
                _str(position),
                _time(source_time),
                tail,
                b"\x00" if body is None else b"\x02" + body,
            )
        )


def _str(s: str) -> bytes:
    b = s.encode("utf-8")
    n = len(b)
    return (_BYTE[n << 1] if n < 64 else avro_long(n)) + b


def _time(t: dt.datetime | None) -> bytes:
    """Avro ["null", long] of `micros(t)`."""
    return b"\x00" if t is None else b"\x02" + avro_long(micros(t))


def envelope_tail(captured: int, connector: str) -> bytes:
    """The envelope fields after `source_time`: `captured_at` (µs) and `connector`."""
    return avro_long(captured) + _str(connector)


def explain(parsed: Any, record: Mapping[str, Any], error: Exception) -> ValidationError:
    """Why fastavro could not encode `record` with the `parsed` record schema: the first field
    that is missing, not valid Unicode or of the wrong type, else `error` itself."""
    fields = parsed.get("fields", []) if isinstance(parsed, dict) else []
    for f in fields:
        name = f["name"]
        t = f["type"]
        value = record.get(name)
        nullable = isinstance(t, list) and "null" in t
        if value is None:
            if not nullable and "default" not in f:
                return ValidationError(
                    f"field {name!r} is missing or null, but the schema requires a value",
                    field=name,
                )
            continue
        if isinstance(value, str) and printable(value) != value:
            return ValidationError(
                f"field {name!r} is not valid Unicode text: {printable(value)!r} (an "
                "undecodable byte or a lone surrogate)",
                field=name,
            )
        try:
            ok = fastavro.validation.validate(value, t, raise_errors=False)
        except Exception:
            ok = False
        if not ok:
            expected = t if isinstance(t, str) else schema_summary({"fields": [f]}).split(":", 1)[1]
            return ValidationError(
                f"field {name!r} has value {value!r} ({type(value).__name__}), expected {expected}",
                field=name,
            )
    return ValidationError(f"record does not match its schema: {error}")


def printable(text: str) -> str:
    """`text` if it is valid Unicode (encodable as UTF-8), else with each undecodable byte a
    source kept by surrogateescape shown as `\\xNN` and any other lone surrogate as `\\uNNNN`."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        try:
            return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        except UnicodeEncodeError:
            return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text
