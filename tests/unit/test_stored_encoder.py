"""The stored-form state encoder writes exactly the two-step path's bytes (a datum, then the
generated Avro encoder or fastavro), and hands over every value it does not take plainly.

Stored fields as the projections keep them (ISO dates and timestamps, decimals as text) and
values of other types, keys missing, are encoded both ways: the stored-form encoder either
raises one of SLOW or returns the same bytes, each time (its remembered pieces included); and
TopicSchemas.state_body gives the two-step path's outcome (bytes, or the same error).
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

import fastavro
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.canonical_schemas import BUILTIN
from hub.codec.encoder import AvroBodyEncoder
from hub.errors import SyncHubError
from hub.publish.stored_encoder import SLOW, Unsupported, compile_stored, stored_source
from hub.publish.topics import TopicSchemas, _record_converter, state_schema

SETTINGS = settings(
    max_examples=150, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)

ODD = {
    "type": "record",
    "name": "Odd",
    "fields": [
        {"name": "id", "type": "string"},
        {"name": "n", "type": ["int", "null"]},
        {"name": "flag", "type": "boolean"},
        {"name": "at", "type": ["null", {"type": "long", "logicalType": "timestamp-millis"}]},
        {"name": "amount", "type": {"type": "bytes", "logicalType": "decimal",
                                    "precision": 6, "scale": 2}},
        {"name": "day", "type": {"type": "int", "logicalType": "date"}},
    ],
}  # fmt: skip
"""Not nullable fields, a union with null second, millis, a small decimal."""

TOPICS = TopicSchemas(BUILTIN)
SCHEMAS = [state_schema(BUILTIN.schema(e)) for e in BUILTIN.entities()] + [ODD]

STORED = (
    st.none()
    | st.booleans()
    | st.integers(-(2**64), 2**64)
    | st.integers(-200, 200)
    | st.floats(allow_nan=True)
    | st.text(max_size=70)
    | st.sampled_from(["", "abc", "é", "2026-03-02", "1e3", "NaN", "Infinity", "-0"])
    | st.dates().map(dt.date.isoformat)
    | st.datetimes(
        timezones=st.sampled_from([None, dt.UTC, dt.timezone(dt.timedelta(hours=5))])
    ).map(dt.datetime.isoformat)
    | st.decimals(places=4, allow_nan=False).map(lambda d: format(d, "f"))
    | st.decimals(allow_nan=True).map(str)
    | st.lists(st.integers(), max_size=2)
)
"""Stored values: the plain forms of every field type, and values of the wrong type."""


def plain(field_type: Any) -> st.SearchStrategy[Any]:
    """The stored form of a field's type (its non-null branch), edges included."""
    if isinstance(field_type, list):
        return st.none() | plain(next(t for t in field_type if t != "null"))
    if isinstance(field_type, dict):
        logical = field_type["logicalType"]
        if logical == "date":
            return st.dates().map(dt.date.isoformat) | st.integers(-(2**31), 2**31 - 1)
        if logical.startswith("timestamp"):
            return st.datetimes(timezones=st.just(dt.UTC)).map(dt.datetime.isoformat)
        places = int(field_type["scale"])
        return st.decimals(places=places, allow_nan=False, allow_infinity=False).map(
            lambda d: format(d, "f")
        )
    return {
        "string": st.text(max_size=70),
        "boolean": st.booleans(),
        "int": st.integers(-(2**31), 2**31 - 1),
        "long": st.integers(-(2**63), 2**63 - 1) | st.integers(-70, 70),
    }[field_type]


def stored(schema: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Stored fields of `schema`: mostly plain, sometimes of another type, some missing."""
    return st.fixed_dictionaries(
        {},
        optional={f["name"]: _mostly(plain(f["type"])) for f in schema["fields"]},
    )


def _mostly(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`strategy` nine times in ten, else any stored value."""
    return st.integers(0, 9).flatmap(lambda i: STORED if i == 0 else strategy)


@functools.cache
def _two_steps(name: str) -> tuple[Any, AvroBodyEncoder]:
    schema = next(s for s in SCHEMAS if s["name"] == name)
    return _record_converter(schema), AvroBodyEncoder(fastavro.parse_schema(schema))


def two_steps(schema: dict[str, Any], fields: dict[str, Any], default_id: str) -> Any:
    """The datum, then the generated encoder or fastavro: bytes or the error's type."""
    datum, encode = _two_steps(schema["name"])
    try:
        d = datum(fields)
        if "id" not in fields and any(f["name"] == "id" for f in schema["fields"]):
            d["id"] = default_id
        return encode(d)
    except Exception as e:  # the outcome compared: which error
        return type(e)


@pytest.mark.parametrize("schema", SCHEMAS, ids=[s["name"] for s in SCHEMAS])
@SETTINGS
@given(data=st.data())
def test_the_same_bytes_or_handed_over(schema: dict[str, Any], data: st.DataObject) -> None:
    encode = compile_stored(schema)
    fields = data.draw(stored(schema))
    default_id = data.draw(st.text(max_size=10))
    expected = two_steps(schema, fields, default_id)
    for _ in range(2):  # the second time from the remembered pieces
        try:
            got = encode(fields, default_id)
        except SLOW:
            continue
        assert got == expected


@pytest.mark.parametrize("entity", BUILTIN.entities())
@SETTINGS
@given(data=st.data())
def test_state_body_is_the_two_step_path(entity: str, data: st.DataObject) -> None:
    schema = state_schema(BUILTIN.schema(entity))
    fields = data.draw(stored(schema))
    expected = two_steps(schema, fields, "k1")
    topics = TOPICS
    assert entity in topics._stored  # every built-in state record is flat
    try:
        got: Any = topics.state_body(entity, f"{entity}/k1", fields)
    except SyncHubError as e:
        assert isinstance(expected, type), (e, expected)  # the two steps failed too
        assert f"{entity}/k1" in str(e)
        return
    assert got == expected


def test_plain_values_are_taken_and_remembered() -> None:
    schema = state_schema(BUILTIN.schema("TimeEntry"))
    encode = compile_stored(schema)
    fields = {
        "date": "2026-03-02",
        "minutes": 90,
        "billable": True,
        "approved_at": "2026-03-03T09:00:00+00:00",
        "hourly_rate": "120.5000",
        "project_id": "Project/acme",
    }
    body = encode(fields, "te-1")
    assert body == two_steps(schema, fields, "te-1")
    assert encode(fields, "te-1") == body
    assert "2026-03-02" in encode.__globals__["_m4"]  # the date's piece remembered
    long_text = {**fields, "description": "x" * 80}
    assert encode(long_text, "te-1") == two_steps(schema, long_text, "te-1")
    assert "x" * 80 not in encode.__globals__["_m6"]  # free text: not kept
    with pytest.raises(SLOW):
        encode({**fields, "date": dt.date(2026, 3, 2)}, "te-1")  # a date object: two steps
    with pytest.raises(SLOW):
        encode({**fields, "approved_at": "2026-03-03T09:00:00"}, "te-1")  # local time
    with pytest.raises(SLOW):
        encode({**fields, "hourly_rate": "0.00001"}, "te-1")  # finer than the scale


def test_only_flat_records() -> None:
    nested = {"type": "record", "name": "N", "fields": [
        {"name": "xs", "type": {"type": "array", "items": "string"}}]}  # fmt: skip
    with pytest.raises(Unsupported):
        stored_source(nested)
    with pytest.raises(Unsupported):
        stored_source({"type": "record", "name": "F", "fields": [{"name": "x", "type": "float"}]})
