"""The generated Avro decoders give exactly fastavro's values (and fastavro's errors).

Random schemas (nested records, unions, arrays, maps, enums, fixed, logical types) and random
records are encoded by fastavro, then decoded by fastavro and by the Codec's generated decoders
and compared value for value and type for type (floats bit for bit). The raw variant is compared
with fastavro's value after turning its datetimes into microseconds. Every hub and canonical
schema, and a source envelope, get the same treatment with records drawn from their schema.
"""

from __future__ import annotations

import datetime as dt
import decimal
import io
import json
import math
import re
import uuid
from importlib import resources
from typing import Any

import fastavro
import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from bench._common import RECORD_SCHEMA
from hub.avro import HEADER_LEN, MAGIC, Codec, Schema
from hub.codec import Unsupported, compile_decoder, decoder_source
from hub.schemas import canonical_entities, canonical_versions, envelope_schema, hub_schema
from tests.unit.avro_strategies import EPOCH, EPOCH_NAIVE, exact, schemas, values


def as_micros(value: Any, nested: bool = True, top: bool = True) -> Any:
    """fastavro's value with its datetimes (timestamps) as integer microseconds."""
    if isinstance(value, dt.datetime):
        return (value - (EPOCH if value.tzinfo else EPOCH_NAIVE)) // dt.timedelta(microseconds=1)
    if not nested and not top:
        return value
    if isinstance(value, dict):
        return {k: as_micros(v, nested, top=False) for k, v in value.items()}
    if isinstance(value, list) and nested:
        return [as_micros(v, nested, top=False) for v in value]
    return value


def outcome(fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return ("ok", exact(fn(*args, **kwargs)))
    except Exception as exc:
        return ("error", type(exc).__name__, re.sub(r" at 0x[0-9a-f]+", "", str(exc)))


@st.composite
def schema_and_records(draw: Any) -> tuple[Schema, list[bytes]]:
    top = draw(schemas())
    if not (isinstance(top, dict) and top.get("type") == "record"):
        top = {"type": "record", "name": "Top", "fields": [{"name": "x", "type": top}]}
    schema = Schema.from_dict(top)
    records = draw(st.lists(values(top, {}), min_size=1, max_size=3))
    try:
        return schema, [encode(schema, r) for r in records]
    except ValueError as exc:
        # fastavro's writer picks a union branch by trying to prepare the value for it and
        # fails instead of trying the next one: a Decimal of another scale (see _is_named), or
        # a text in a union whose date branch comes first (it parses '' as an ISO date)
        if "Scale provided" not in str(exc) and "isoformat" not in str(exc):
            raise
        reject()


def encode(schema: Schema, record: Any) -> bytes:
    buf = io.BytesIO()
    buf.write(MAGIC + schema.fingerprint)
    fastavro.schemaless_writer(buf, schema.parsed, record)
    return buf.getvalue()


def fastavro_decode(schema: Schema, payload: bytes) -> Any:
    return fastavro.schemaless_reader(io.BytesIO(payload[HEADER_LEN:]), schema.parsed, None)


def check_payload(schema: Schema, payload: bytes, valid: bool = True) -> None:
    """Every variant of the Codec agrees with fastavro on `payload`; so does the generated code
    alone when the payload is `valid` (on other payloads it may raise, handing it to fastavro)."""
    codec = Codec()
    codec.add(schema)
    expected = outcome(fastavro_decode, schema, payload)
    assert outcome(codec.decode, payload) == expected
    assert outcome(codec.decode, payload) == expected  # the cached decoder too
    if expected[0] == "ok":
        value = fastavro_decode(schema, payload)
        assert exact(codec.decode_raw(payload)) == exact(as_micros(value))
        assert exact(codec.decode_raw(payload, nested=False)) == exact(as_micros(value, False))
    # the generated decoders themselves (not the fastavro fallback) give the same value
    for raw, nested in ((False, True), (True, True), (True, False)):
        try:
            generated = compile_decoder(schema.parsed, raw=raw, nested=nested)
        except Unsupported:
            continue
        got = outcome(generated, payload, HEADER_LEN)
        if not valid and got[0] == "error":
            continue
        if expected[0] == "ok":
            value = fastavro_decode(schema, payload)
            want = exact(as_micros(value, nested) if raw else value)
            assert got == ("ok", want), decoder_source(schema.parsed, raw=raw, nested=nested)[0]


# -- the properties --------------------------------------------------------------------------


@settings(
    max_examples=300, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(schema_and_records())
def test_generated_decoders_equal_fastavro_on_random_schemas(case: Any) -> None:
    schema, payloads = case
    for payload in payloads:
        check_payload(schema, payload)


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(schema_and_records(), st.data())
def test_malformed_payloads_give_fastavro_errors(case: Any, data: Any) -> None:
    """Cut short, extended or with a byte changed, a payload decodes (or fails) as fastavro
    decodes it: the generated code hands every body it cannot read to fastavro."""
    schema, payloads = case
    payload = payloads[0]
    cut = data.draw(st.integers(HEADER_LEN, len(payload)))
    check_payload(schema, payload[:cut], valid=False)
    check_payload(schema, payload + data.draw(st.binary(max_size=4)), valid=False)
    if len(payload) > HEADER_LEN:
        at = data.draw(st.integers(HEADER_LEN, len(payload) - 1))
        changed = bytearray(payload)
        changed[at] = data.draw(st.integers(0, 255))
        check_payload(schema, bytes(changed), valid=False)


def shipped_schemas() -> list[Schema]:
    root = resources.files("schemas") / "hub"
    hub = [hub_schema(f.name[:-5]) for f in root.iterdir() if f.name.endswith(".avsc")]
    canonical = [s for e in canonical_entities() for s in canonical_versions(e)]
    envelope = envelope_schema("tracker", "time_entries", RECORD_SCHEMA)
    return sorted([*hub, *canonical, envelope], key=lambda s: s.name)


@pytest.mark.parametrize("schema", shipped_schemas(), ids=lambda s: s.name)
@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_every_hub_and_canonical_schema_decodes_as_fastavro(schema: Schema, data: Any) -> None:
    record = data.draw(values(json.loads(schema.json), {}))
    check_payload(schema, encode(schema, record))


def test_source_changed_envelope_sample() -> None:
    schema = envelope_schema("tracker", "time_entries", RECORD_SCHEMA)
    record = {
        "digest": b"\x01\x02\x03\x04\x05\x06\x07\x08",
        "op": "update",
        "key": "te-1",
        "position": "7",
        "source_time": dt.datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=dt.UTC),
        "captured_at": dt.datetime(2026, 1, 2, 3, 4, 6, 999999, tzinfo=dt.UTC),
        "connector": "bench",
        "after": {
            "id": "te-1",
            "person": "u1",
            "day": "2026-01-02",
            "minutes": 90,
            "description": "#acme/web/build ünïcode " * 5,
        },
    }
    codec = Codec()
    codec.add(schema)
    payload = codec.encode(schema, record)
    assert codec.decode(payload) == record
    raw = codec.decode_raw(payload)
    assert raw["captured_at"] == 1_767_323_046_999_999
    assert raw["source_time"] == 1_767_323_045_000_006
    assert raw["after"] == record["after"]
    check_payload(schema, payload)


def test_canonical_record_with_decimal_date_and_timestamp() -> None:
    schema = canonical_versions("TimeEntry")[-1]  # v3: approval time and the rate in force
    record = {
        "id": "t1",
        "person_id": "Person/u1",
        "project_id": None,
        "task_id": None,
        "date": dt.date(2026, 2, 28),
        "minutes": 30,
        "description": None,
        "billable": True,
        "approved": True,
        "approved_by": "Person/m",
        "approved_at": dt.datetime(2026, 3, 1, tzinfo=dt.UTC),
        "labor_category": "senior",
        "approval_status": "approved",
        "hourly_rate": decimal.Decimal("150.0000"),
        "currency": "EUR",
    }
    check_payload(schema, encode(schema, record))
    (project,) = canonical_versions("Project")[-1:]
    row = {
        "id": "p",
        "code": "acme/web",
        "name": "Web",
        "account_id": None,
        "status": "open",
        "currency": "EUR",
        "hourly_rate": decimal.Decimal("123.4500"),
        "billing_method": "fixed",
    }
    check_payload(project, encode(project, row))


def test_recursive_and_reused_named_types() -> None:
    schema = Schema.from_dict(
        {
            "type": "record",
            "name": "Node",
            "namespace": "t",
            "fields": [
                {"name": "id", "type": {"type": "fixed", "name": "Id", "size": 2}},
                {"name": "other", "type": ["null", "Id"]},
                {"name": "at", "type": {"type": "long", "logicalType": "timestamp-micros"}},
                {"name": "next", "type": ["null", "Node"]},
                {"name": "kids", "type": {"type": "array", "items": "Node"}},
            ],
        }
    )
    leaf = {"id": b"cc", "other": None, "at": EPOCH, "next": None, "kids": []}
    node = {
        "id": b"aa",
        "other": b"bb",
        "at": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        "next": {**leaf, "next": leaf},
        "kids": [leaf, leaf],
    }
    payload = encode(schema, node)
    check_payload(schema, payload)
    codec = Codec()
    codec.add(schema)
    top_only = codec.decode_raw(payload, nested=False)
    assert top_only["at"] == 1_767_225_600_000_000
    assert top_only["next"]["at"] == EPOCH  # nested records keep fastavro's datetimes
    assert codec.decode_raw(payload)["next"]["at"] == 0


def test_blocked_arrays_and_maps_with_negative_counts() -> None:
    """fastavro's writer never writes a negative block count (count, then byte size); other
    writers do, and the generated decoder reads them."""
    schema = Schema.from_dict(
        {
            "type": "record",
            "name": "B",
            "fields": [
                {"name": "a", "type": {"type": "array", "items": "long"}},
                {"name": "m", "type": {"type": "map", "values": "string"}},
            ],
        }
    )
    # a: block of -2 items (size 2 bytes): 1, 2; then block of 1 item: 3; end
    # m: block of -1 entry (size 4): "k" -> "v"; end
    body = bytes([3, 4, 2, 4, 2, 6, 0]) + bytes([1, 8, 2]) + b"k" + bytes([2]) + b"v" + bytes([0])
    payload = MAGIC + schema.fingerprint + body
    check_payload(schema, payload)
    codec = Codec()
    codec.add(schema)
    assert codec.decode(payload) == {"a": [1, 2, 3], "m": {"k": "v"}}


def test_long_strings_and_big_longs_take_the_multibyte_paths() -> None:
    schema = Schema.from_dict(
        {
            "type": "record",
            "name": "L",
            "fields": [
                {"name": "s", "type": "string"},
                {"name": "b", "type": "bytes"},
                {"name": "n", "type": "long"},
                {"name": "u", "type": ["null", "long"]},
            ],
        }
    )
    for n in (0, -1, 63, -64, 64, 2**31, -(2**63), 2**63 - 1):
        record = {"s": "x" * (n % 300), "b": b"y" * (n % 500), "n": n, "u": n}
        check_payload(schema, encode(schema, record))


def test_schemas_the_generator_leaves_to_fastavro() -> None:
    wide = Schema.from_dict(
        {
            "type": "record",
            "name": "W",
            "fields": [
                {
                    "name": "u",
                    "type": [
                        {"type": "enum", "name": f"E{i}", "symbols": ["A"]} for i in range(70)
                    ],
                }
            ],
        }
    )
    with pytest.raises(Unsupported):
        compile_decoder(wide.parsed)
    codec = Codec()
    codec.add(wide)
    payload = encode(wide, {"u": "A"})
    assert codec.decode(payload) == {"u": "A"}
    check_payload(wide, payload)


def test_reader_schema_resolution_still_uses_fastavro() -> None:
    v1 = Schema.from_dict({"type": "record", "name": "R", "fields": [{"name": "a", "type": "int"}]})
    v2 = Schema.from_dict(
        {
            "type": "record",
            "name": "R",
            "fields": [
                {"name": "a", "type": "long"},
                {"name": "b", "type": "string", "default": "x"},
            ],
        }
    )
    codec = Codec()
    codec.add(v1)
    payload = encode(v1, {"a": 5})
    assert codec.decode(payload, reader=v2) == {"a": 5, "b": "x"}
    assert codec.decode(payload, reader=v1) == {"a": 5}


def test_decode_raw_needs_a_known_schema_like_decode() -> None:
    from hub.errors import UnknownSchemaError

    with pytest.raises(UnknownSchemaError):
        Codec().decode_raw(MAGIC + b"\0" * 8 + b"\0")
    with pytest.raises(UnknownSchemaError):
        Codec().decode_raw(b"{}")


def test_memoryview_payloads_are_decoded_too() -> None:
    """The generated code reads `bytes`; a memoryview (a store may hand one out) falls back."""
    schema = Schema.from_dict(RECORD_SCHEMA)
    record = {"id": "1", "person": "p", "day": "d", "minutes": 3, "description": None}
    payload = encode(schema, record)
    codec = Codec()
    codec.add(schema)
    assert codec.decode(memoryview(payload)) == record  # type: ignore[arg-type]


def test_uuid_and_nan_are_fastavros() -> None:
    schema = Schema.from_dict(
        {
            "type": "record",
            "name": "N",
            "fields": [
                {"name": "id", "type": {"type": "string", "logicalType": "uuid"}},
                {"name": "x", "type": "double"},
                {"name": "y", "type": "float"},
            ],
        }
    )
    payload = encode(schema, {"id": uuid.UUID(int=7), "x": math.nan, "y": -0.0})
    check_payload(schema, payload)
