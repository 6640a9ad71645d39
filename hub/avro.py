"""Avro single-object encoding with fastavro, and an in-process cache of parsed schemas.

A payload is `C3 01` + the 8-byte little-endian CRC-64-AVRO fingerprint of the writer schema's
parsing canonical form + the Avro binary body. Anyone holding the `.avsc` can compute the
fingerprint and decode the payload; the event store keeps every schema it ever stored a payload
under, so old events always decode.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form

from hub.errors import UnknownSchemaError, ValidationError

MAGIC = b"\xc3\x01"
HEADER_LEN = 10


@dataclass(frozen=True, slots=True)
class Schema:
    """One Avro schema: its JSON text, parsed form and fingerprint (8 bytes, as in the header)."""

    name: str
    json: str
    parsed: Any
    fingerprint: bytes

    @classmethod
    def from_dict(cls, schema: dict[str, Any]) -> Schema:
        parsed = fastavro.parse_schema(schema)
        canonical = to_parsing_canonical_form(parsed)
        fp = bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO"))[::-1]  # little-endian
        name = (
            schema.get("namespace", "") + "." + schema["name"]
            if "namespace" in schema
            else schema["name"]
        )
        return cls(
            name=name, json=json.dumps(schema, sort_keys=True), parsed=parsed, fingerprint=fp
        )

    @classmethod
    def from_json(cls, text: str) -> Schema:
        return cls.from_dict(json.loads(text))

    @property
    def fingerprint_hex(self) -> str:
        return self.fingerprint.hex()


class Codec:
    """Encodes and decodes single-object payloads; knows every schema it was given.

    `resolve` is called with a fingerprint the codec has not seen (e.g. to load it from the
    store); it returns the schema's JSON text or None.
    """

    def __init__(self, resolve: Any = None) -> None:
        self._by_fp: dict[bytes, Schema] = {}
        self._resolve = resolve
        self._buf = io.BytesIO()

    def add(self, schema: Schema) -> Schema:
        return self._by_fp.setdefault(schema.fingerprint, schema)

    def known(self, fp: bytes) -> Schema | None:
        return self._by_fp.get(fp)

    def schema_of(self, payload: bytes) -> Schema:
        if payload[:2] != MAGIC:
            raise UnknownSchemaError(
                f"payload does not start with the Avro single-object marker C3 01 "
                f"(got {payload[:2].hex()}); it was not written by synchub"
            )
        fp = payload[2:HEADER_LEN]
        schema = self._by_fp.get(fp)
        if schema is None and self._resolve is not None:
            text = self._resolve(fp)
            if text is not None:
                schema = self.add(Schema.from_json(text))
        if schema is None:
            raise UnknownSchemaError(
                f"no schema with fingerprint {fp.hex()} in the store; the payload cannot be "
                "decoded. Was the event copied from another store without its schemas table?"
            )
        return schema

    def encode(self, schema: Schema, record: Any) -> bytes:
        """Validate `record` against `schema` and encode it; raises ValidationError."""
        buf = self._buf
        buf.seek(0)
        buf.truncate()
        buf.write(MAGIC)
        buf.write(schema.fingerprint)
        try:
            fastavro.schemaless_writer(buf, schema.parsed, record)
        except (TypeError, ValueError, KeyError, AttributeError, OverflowError) as e:
            raise _validation_error(schema, record, e) from None
        return buf.getvalue()

    def decode(self, payload: bytes, reader: Schema | None = None) -> Any:
        """Decode with the writer schema named in the header (resolved into `reader` if given)."""
        writer = self.schema_of(payload)
        return fastavro.schemaless_reader(
            io.BytesIO(payload[HEADER_LEN:]),
            writer.parsed,
            reader.parsed if reader is not None and reader is not writer else None,
        )


def _validation_error(schema: Schema, record: Any, error: Exception) -> ValidationError:
    """Turn fastavro's terse error into one that names the field and the expected type."""
    from fastavro.validation import validate

    field_name: str | None = None
    detail = str(error)
    try:
        validate(record, schema.parsed, raise_errors=True)
    except fastavro.validation.ValidationError as ve:
        for err in ve.errors:
            field_name = str(err.field).split(".")[-1] if err.field else None
            detail = (
                f"field {err.field!s}: value {err.datum!r} is not of type {_type_name(err.schema)}"
            )
            break
    except Exception:
        pass
    return ValidationError(
        f"record does not match schema {schema.name}: {detail}", field=field_name
    )


def _type_name(schema: Any) -> str:
    if isinstance(schema, dict):
        return str(schema.get("logicalType") or schema.get("type"))
    if isinstance(schema, list):
        return " or ".join(_type_name(s) for s in schema)
    return str(schema)
