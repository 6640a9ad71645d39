"""The generated Avro body encoders write exactly fastavro's bytes, and leave to fastavro (so
its errors and conversions are its own) every value they do not take the plain way.

Random schemas with records valid for them, and with values of any type at all, are written by
fastavro and by `AvroBodyEncoder`: same bytes or the same error. The generated code alone never
returns other bytes than fastavro's: it either agrees or raises, handing the value over.
"""

from __future__ import annotations

import datetime as dt
import decimal
import io
import re
from typing import Any

import fastavro
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench._common import RECORD_SCHEMA
from connectors.timetagger.source import RECORDS_SCHEMA, TAGS_SCHEMA
from connectors.tryton.crm_objects import CRM_OBJECTS
from connectors.tryton.objects import OBJECTS
from hub.codec.encoder import _SLOW, AvroBodyEncoder, Unsupported, compile_encoder, encoder_source
from hub.schemas import canonical_entities, canonical_versions, hub_schema
from tests.unit.avro_strategies import schemas, values

SETTINGS = settings(
    max_examples=300, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)

ANY_VALUE = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | st.text(max_size=20)
    | st.binary(max_size=20)
    | st.decimals(allow_nan=True)
    | st.decimals(places=4, allow_nan=False)
    | st.datetimes(timezones=st.sampled_from([None, dt.UTC])),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.tuples(inner)
        | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
"""A value of any type, for any field: most are not what the schema names."""


def fastavro_outcome(parsed: Any, record: Any) -> Any:
    buf = io.BytesIO()
    try:
        fastavro.schemaless_writer(buf, parsed, record)
    except Exception as exc:
        return ("error", type(exc).__name__, re.sub(r" at 0x[0-9a-f]+", "", str(exc)))
    return ("ok", buf.getvalue())


def check(parsed: Any, record: Any) -> None:
    """`AvroBodyEncoder` gives fastavro's outcome; the generated code alone gives its bytes
    or hands over."""
    expected = fastavro_outcome(parsed, record)
    encoder = AvroBodyEncoder(parsed)
    try:
        got: Any = ("ok", encoder(record))
    except Exception as exc:
        got = ("error", type(exc).__name__, re.sub(r" at 0x[0-9a-f]+", "", str(exc)))
    assert got == expected
    if encoder.fast is None:
        return
    try:
        fast = encoder.fast(record)
    except _SLOW:
        return
    assert ("ok", fast) == expected, encoder_source(parsed)[0]


def top_record(schema: Any) -> dict[str, Any]:
    if isinstance(schema, dict) and schema.get("type") == "record":
        return dict(schema)
    return {"type": "record", "name": "Top", "fields": [{"name": "x", "type": schema}]}


@SETTINGS
@given(st.data())
def test_valid_records_are_written_as_fastavro_writes_them(data: Any) -> None:
    top = top_record(data.draw(schemas()))
    parsed = fastavro.parse_schema(top)
    for record in data.draw(st.lists(values(top, {}), min_size=1, max_size=3)):
        check(parsed, record)


@SETTINGS
@given(st.data())
def test_values_of_any_type_get_fastavros_bytes_or_fastavros_error(data: Any) -> None:
    top = top_record(data.draw(schemas()))
    parsed = fastavro.parse_schema(top)
    names = [f["name"] for f in top["fields"]]
    record = {n: data.draw(ANY_VALUE) for n in names if data.draw(st.integers(0, 9))}
    check(parsed, record)


@pytest.mark.parametrize(
    "record",
    [
        {"s": "x" * 64, "n": 2**63 - 1, "u": None, "f": 1.5, "d": 0.1},
        {"s": "é" * 40, "n": -(2**63), "u": 7, "f": float("nan"), "d": float("-inf")},
        {"s": "", "n": 2**63, "u": 1, "f": 1.0, "d": 1.0},  # long out of range
        {"s": "\udcff", "n": 0, "u": None, "f": 1.0, "d": 1.0},  # not valid Unicode
        {"s": "a", "n": 0, "u": None, "f": 1e39, "d": 1.0},  # too large for a float
        {
            "s": "a",
            "n": True,
            "u": None,
            "f": 1.0,
            "d": 1,
        },  # a bool for a long, an int for a double
        {"s": "a", "n": 0, "u": "7", "f": 1.0, "d": 1.0},  # text in a nullable long
        {"s": "a", "n": 0, "f": 1.0, "d": 1.0},  # a nullable field missing
        {"n": 0, "u": None, "f": 1.0, "d": 1.0},  # a required field missing
    ],
)
def test_edges_are_fastavros(record: dict[str, Any]) -> None:
    parsed = fastavro.parse_schema(
        {
            "type": "record",
            "name": "Edges",
            "fields": [
                {"name": "s", "type": "string"},
                {"name": "n", "type": "long"},
                {"name": "u", "type": ["null", "long"], "default": None},
                {"name": "f", "type": "float"},
                {"name": "d", "type": "double"},
            ],
        }
    )
    check(parsed, record)


def test_aware_timestamps_take_the_fast_path() -> None:
    parsed = fastavro.parse_schema(
        {
            "type": "record",
            "name": "T",
            "fields": [
                {"name": "us", "type": {"type": "long", "logicalType": "timestamp-micros"}},
                {"name": "ms", "type": {"type": "long", "logicalType": "timestamp-millis"}},
            ],
        }
    )
    encoder = AvroBodyEncoder(parsed)
    assert encoder.fast is not None
    t = dt.datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    record = {"us": t, "ms": t}
    assert encoder.fast(record) == fastavro_outcome(parsed, record)[1]


@pytest.mark.parametrize(
    "value",
    [
        "0", "-0", "0.0000", "1.5", "-128", "-0.0128", "127", "128", "-129", "1E+3", "-1E+3",
        "99999999999999.9999", "-99999999999999.9999",  # the precision, to the last digit
        "999999999999999.9999",  # a digit more than the precision: fastavro's error
        "1.23456",  # a finer exponent than the scale: fastavro's error
        "NaN", "-Infinity", "sNaN",  # not finite: fastavro's error
    ],
)  # fmt: skip
def test_decimals_on_bytes_are_fastavros(value: str) -> None:
    parsed = fastavro.parse_schema(
        {
            "type": "record",
            "name": "Money",
            "fields": [
                {
                    "name": "d",
                    "type": {
                        "type": "bytes",
                        "logicalType": "decimal",
                        "precision": 18,
                        "scale": 4,
                    },
                },
                {
                    "name": "o",
                    "type": ["null", {"type": "bytes", "logicalType": "decimal", "precision": 3}],
                    "default": None,
                },
            ],
        }
    )
    encoder = AvroBodyEncoder(parsed)
    assert encoder.fast is not None
    check(parsed, {"d": decimal.Decimal(value), "o": None})
    check(parsed, {"d": decimal.Decimal("1"), "o": decimal.Decimal(value)})
    check(parsed, {"d": value, "o": None})  # text: fastavro's own conversion or error


def test_a_decimal_too_large_to_scale_exactly_is_left_to_fastavro() -> None:
    parsed = fastavro.parse_schema(
        {
            "type": "record",
            "name": "Huge",
            "fields": [
                {
                    "name": "d",
                    "type": {"type": "bytes", "logicalType": "decimal", "precision": 9, "scale": 4},
                }
            ],
        }
    )
    fast = AvroBodyEncoder(parsed).fast
    assert fast is not None
    with pytest.raises(_SLOW):  # fastavro writes it (slowly: a million-digit integer)
        fast({"d": decimal.Decimal("1E+999996")})


HUB_SCHEMAS = ("checkpoint_advanced", "record_quarantined", "delta_planned", "write_attempted")


def tryton_schemas() -> list[dict[str, Any]]:
    objects = [*OBJECTS.values(), *CRM_OBJECTS]
    return [o.schema().schema for o in objects]


def test_the_schemas_the_hub_writes_every_change_with_get_a_generated_encoder() -> None:
    """The records connectors capture, and the hub's own events, never need fastavro's walk."""
    for record in (RECORD_SCHEMA, RECORDS_SCHEMA, TAGS_SCHEMA, *tryton_schemas()):
        compile_encoder(fastavro.parse_schema(record))
    for name in HUB_SCHEMAS:
        compile_encoder(hub_schema(name).parsed)
    for entity in canonical_entities():
        for version in canonical_versions(entity):
            try:
                compile_encoder(version.parsed)
            except Unsupported as e:  # decimals and the like: fastavro writes those
                assert "logical" in str(e) or "union" in str(e)


def test_what_the_generator_leaves_to_fastavro() -> None:
    for schema in (
        {"type": "record", "name": "U", "fields": [{"name": "u", "type": ["int", "string"]}]},
        {
            "type": "record",
            "name": "Node",
            "fields": [{"name": "next", "type": ["null", "Node"]}],
        },
        {
            "type": "record",
            "name": "D",
            "fields": [
                {
                    "name": "d",
                    "type": {
                        "type": "fixed",
                        "name": "F",
                        "size": 8,
                        "logicalType": "decimal",
                        "precision": 9,
                    },
                }
            ],
        },
    ):
        parsed = fastavro.parse_schema(schema)
        with pytest.raises(Unsupported):
            compile_encoder(parsed)
        assert AvroBodyEncoder(parsed).fast is None
