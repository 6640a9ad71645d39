"""Avro single-object encoding: fastavro encodes, decoders generated per writer schema decode
(fastavro for what they do not handle), and an in-process cache of parsed schemas.

A payload is `C3 01` + the 8-byte little-endian CRC-64-AVRO fingerprint of the writer schema's
parsing canonical form + the Avro binary body. Anyone holding the `.avsc` can compute the
fingerprint and decode the payload; the event store keeps every schema it ever stored a payload
under, so old events always decode.

Payloads synchub wrote before 2026-12-04 carry their fingerprint's 8 bytes in reverse
(big-endian) order: a codec knows every schema under both orders, so they still decode (a
reversed fingerprint equal to another schema's is a 1 in 2^64 chance). New payloads follow
the spec, so Java's `BinaryMessageDecoder` or any spec reader decodes them.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form

from hub.codec.generated import BodyDecoder, Unsupported, compile_decoder
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
        # fastavro's hex is the fingerprint's bytes little-endian, as the spec's single-object
        # header has them (checked against the spec's algorithm: tests/unit/
        # test_avro_and_schemas.py); synchub before 2026-12-04 wrote them reversed (see the module's doc)
        fp = bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO"))
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


PayloadDecoder = Callable[[bytes], Any]
"""Decodes a whole payload (header included) written with one known schema."""

_EXACT, _RAW, _RAW_TOP = 0, 1, 2
"""Decoder variants: fastavro's values; timestamps as micros; only the top level's as micros."""


class Codec:
    """Encodes and decodes single-object payloads; knows every schema it was given.

    `resolve` is called with a fingerprint the codec has not seen (e.g. to load it from the
    store); it returns the schema's JSON text or None.

    Decoding uses a decoder generated from the writer schema (hub.codec.generated), compiled
    the first time a fingerprint is decoded and cached here, keyed by the payload's 10-byte
    header. It returns exactly what `fastavro.schemaless_reader` returns. fastavro itself is
    used for what the generator does not handle: schema resolution (`reader` given and not the
    writer schema itself), schemas with unions of more than 64 branches or protocol types, and
    any payload the generated code cannot read the canonical way (truncated, malformed, not
    `bytes`), so errors are fastavro's own.
    """

    def __init__(self, resolve: Any = None) -> None:
        self._by_fp: dict[bytes, Schema] = {}
        self._resolve = resolve
        self._buf = io.BytesIO()
        self._decoders: tuple[dict[bytes, BodyDecoder], ...] = ({}, {}, {})
        self._fallbacks: tuple[dict[bytes, BodyDecoder], ...] = ({}, {}, {})

    def add(self, schema: Schema) -> Schema:
        known = self._by_fp.setdefault(schema.fingerprint, schema)
        self._by_fp.setdefault(schema.fingerprint[::-1], known)  # headers written reversed
        return known

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
        """Decode with the writer schema named in the header (resolved into `reader` if given).

        The value is exactly fastavro's: datetimes for timestamps, dates, Decimals, UUIDs.
        """
        if reader is None:
            fn = self._decoders[_EXACT].get(payload[:HEADER_LEN])
            if fn is not None:
                try:
                    return fn(payload, HEADER_LEN)
                except Exception:
                    return self._fastavro(payload, _EXACT)
        writer = self.schema_of(payload)
        if reader is None or reader is writer:
            return self.decoder(writer)(payload)
        return fastavro.schemaless_reader(
            io.BytesIO(payload[HEADER_LEN:]), writer.parsed, reader.parsed
        )

    def decode_raw(self, payload: bytes, *, nested: bool = True) -> Any:
        """Decode like `decode`, but keep timestamps (timestamp-millis/micros and their local-
        variants) as integer microseconds since the epoch instead of datetimes.

        With `nested=False` only the top-level record's own fields are kept raw; nested records,
        arrays and maps decode exactly as `decode` gives them (use it for an envelope whose
        `after` record must stay as fastavro reads it). Everything else is as `decode` gives it.
        A raw timestamp never fails to decode, where fastavro raises for one outside datetime's
        range (years 1-9999).
        """
        variant = _RAW if nested else _RAW_TOP
        fn = self._decoders[variant].get(payload[:HEADER_LEN])
        if fn is not None:
            try:
                return fn(payload, HEADER_LEN)
            except Exception:
                return self._fastavro(payload, variant)
        return self.decoder(self.schema_of(payload), raw=True, nested=nested)(payload)

    def decoder(self, schema: Schema, *, raw: bool = False, nested: bool = True) -> PayloadDecoder:
        """The decoder of payloads written with `schema` (it does not check their header), as
        `decode` (raw=False) or `decode_raw` (raw=True, `nested` as there) use it: generated
        once per fingerprint and variant, fastavro when the generated code cannot."""
        variant = _EXACT if not raw else _RAW if nested else _RAW_TOP
        key = MAGIC + schema.fingerprint
        fn = self._decoders[variant].get(key)
        if fn is None:
            try:
                fn = compile_decoder(schema.parsed, raw=raw, nested=nested)
            except Unsupported:
                fn = _fastavro_body_decoder(schema.parsed, variant)
            fallback = _fastavro_body_decoder(schema.parsed, variant)
            for header in (key, MAGIC + schema.fingerprint[::-1]):  # and headers written reversed
                self._decoders[variant][header] = fn
                self._fallbacks[variant][header] = fallback
        generated, fallback = fn, self._fallbacks[variant][key]

        def decode(payload: bytes) -> Any:
            try:
                return generated(payload, HEADER_LEN)
            except Exception:
                return fallback(payload, HEADER_LEN)

        return decode

    def _fastavro(self, payload: bytes, variant: int) -> Any:
        """fastavro's answer for a payload the generated decoder could not read (its error)."""
        return self._fallbacks[variant][payload[:HEADER_LEN]](payload, HEADER_LEN)


def _fastavro_body_decoder(parsed: Any, variant: int) -> BodyDecoder:
    """`decode(buf, pos)` by fastavro, with timestamps as micros unless `variant` is exact."""

    def decode(buf: bytes, pos: int) -> Any:
        value = fastavro.schemaless_reader(io.BytesIO(buf[pos:]), parsed, None)
        return value if variant == _EXACT else _raw_of(value, variant == _RAW)

    return decode


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_EPOCH_NAIVE = dt.datetime(1970, 1, 1)
_MICROSECOND = dt.timedelta(microseconds=1)


def _raw_of(value: Any, nested: bool) -> Any:
    """fastavro's value with its datetimes as microseconds (only timestamp logical types give
    datetimes); with `nested` False, only the top-level record's own fields."""
    if isinstance(value, dt.datetime):
        return (value - (_EPOCH if value.tzinfo else _EPOCH_NAIVE)) // _MICROSECOND
    if isinstance(value, dict):
        if nested:
            return {k: _raw_of(v, True) for k, v in value.items()}
        return {k: _raw_of(v, True) if isinstance(v, dt.datetime) else v for k, v in value.items()}
    if isinstance(value, list) and nested:
        return [_raw_of(v, True) for v in value]
    return value


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
