"""Avro single-object encoding, the envelope fast path, and schema evolution rules."""

from __future__ import annotations

import datetime as dt
import io
import itertools
import json

import fastavro
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.avro import MAGIC, Codec, Schema
from hub.errors import IncompatibleSchemaError, UnknownSchemaError, ValidationError
from hub.ingest.envelope import OPS, Envelope, avro_long, envelope_tail, micros
from hub.schemas import (
    canonical_entities,
    canonical_versions,
    check_backward,
    compatibility_problems,
    envelope_schema,
    hub_schema,
    record_schema_of,
)
from tests.avro_spec import crc64_avro

RECORD = {
    "type": "record",
    "name": "R",
    "fields": [
        {"name": "id", "type": "string"},
        {"name": "n", "type": "long"},
        {"name": "note", "type": ["null", "string"], "default": None},
    ],
}


def test_single_object_header_is_marker_plus_little_endian_crc64() -> None:
    schema = Schema.from_dict(RECORD)
    codec = Codec()
    codec.add(schema)
    payload = codec.encode(schema, {"id": "a", "n": 1, "note": None})
    assert payload[:2] == b"\xc3\x01"
    canonical = fastavro.schema.to_parsing_canonical_form(fastavro.parse_schema(RECORD))
    expected = crc64_avro(canonical.encode())  # the spec's algorithm, not fastavro's
    assert payload[2:10] == expected == schema.fingerprint
    assert codec.decode(payload) == {"id": "a", "n": 1, "note": None}


def test_payloads_written_with_the_fingerprint_reversed_still_decode() -> None:
    """synchub before 2026-12-04 wrote the fingerprint's bytes in reverse order: those events
    stay readable, by the codec that knows the schema and through the resolver."""
    schema = Schema.from_dict(RECORD)
    codec = Codec()
    codec.add(schema)
    body = codec.encode(schema, {"id": "a", "n": 7, "note": "x"})[10:]
    old = b"\xc3\x01" + schema.fingerprint[::-1] + body
    assert codec.decode(old) == {"id": "a", "n": 7, "note": "x"}
    assert codec.decode_raw(old)["n"] == 7
    assert codec.schema_of(old) is schema
    stored = {schema.fingerprint[::-1]: schema.json}  # an old store's schemas table
    resolved = Codec(resolve=stored.get)
    assert resolved.decode(old)["note"] == "x"


def test_decoding_needs_the_schema() -> None:
    schema = Schema.from_dict(RECORD)
    writer = Codec()
    writer.add(schema)
    payload = writer.encode(schema, {"id": "a", "n": 1, "note": None})
    with pytest.raises(UnknownSchemaError, match=schema.fingerprint.hex()):
        Codec().decode(payload)
    resolved = Codec(resolve=lambda fp: schema.json if fp == schema.fingerprint else None)
    assert resolved.decode(payload)["n"] == 1
    with pytest.raises(UnknownSchemaError, match="C3 01"):
        Codec().decode(b"{}")


def test_encode_names_the_bad_field() -> None:
    schema = Schema.from_dict(RECORD)
    codec = Codec()
    with pytest.raises(ValidationError) as e:
        codec.encode(schema, {"id": "a", "n": "many"})
    assert e.value.field == "n"
    assert "'many'" in str(e.value)


def test_old_payload_decodes_with_new_reader_schema() -> None:
    v1 = Schema.from_dict(
        {"type": "record", "name": "R", "fields": [{"name": "id", "type": "string"}]}
    )
    v2 = Schema.from_dict(RECORD)
    codec = Codec()
    codec.add(v1)
    old = codec.encode(v1, {"id": "x"})
    assert codec.decode(
        old,
        reader=Schema.from_dict({**RECORD, "fields": [RECORD["fields"][0], RECORD["fields"][2]]}),
    ) == {"id": "x", "note": None}
    assert v1.fingerprint != v2.fingerprint


@pytest.mark.parametrize("entity", canonical_entities())
def test_every_canonical_schema_documents_every_field(entity: str) -> None:
    for schema in canonical_versions(entity):
        doc = json.loads(schema.json)
        assert doc.get("doc"), f"{entity} needs a doc"
        for f in doc["fields"]:
            assert f.get("doc"), f"{entity}.{f['name']} needs a doc"


@pytest.mark.parametrize("entity", canonical_entities())
def test_each_canonical_version_reads_data_written_with_the_previous(entity: str) -> None:
    versions = canonical_versions(entity)
    for old, new in itertools.pairwise(versions):
        assert compatibility_problems(json.loads(new.json), json.loads(old.json)) == []
        # and concretely: a record written with the old version decodes with the new one
        sample = _sample(json.loads(old.json))
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, old.parsed, sample)
        buf.seek(0)
        decoded = fastavro.schemaless_reader(buf, old.parsed, new.parsed)
        for name in sample:
            assert name in decoded
        added = {f["name"] for f in json.loads(new.json)["fields"]} - set(sample)
        for name in added:
            default = next(
                f["default"] for f in json.loads(new.json)["fields"] if f["name"] == name
            )
            assert decoded[name] == default


def test_some_canonical_entity_has_evolved() -> None:
    """The evolution test above must exercise at least one real version step."""
    assert any(len(canonical_versions(e)) > 1 for e in canonical_entities())


def _sample(schema: dict) -> dict:
    import datetime as dt
    import decimal

    out = {}
    for f in schema["fields"]:
        t = f["type"]
        t = next(x for x in t if x != "null") if isinstance(t, list) else t
        if isinstance(t, dict) and t.get("logicalType") == "date":
            out[f["name"]] = dt.date(2026, 11, 25)
        elif isinstance(t, dict) and t.get("logicalType") == "decimal":
            out[f["name"]] = decimal.Decimal("12.5000")
        elif isinstance(t, dict) and t.get("logicalType") == "timestamp-micros":
            out[f["name"]] = dt.datetime(2026, 11, 25, tzinfo=dt.UTC)
        else:
            out[f["name"]] = {"string": "x", "long": 7, "int": 7, "boolean": True, "double": 1.5}[t]
    return out


def test_incompatible_change_is_refused_with_a_clear_error() -> None:
    old = {"type": "record", "name": "R", "fields": [{"name": "n", "type": "long"}]}
    retyped = {"type": "record", "name": "R", "fields": [{"name": "n", "type": "string"}]}
    required_added = {
        "type": "record",
        "name": "R",
        "fields": [{"name": "n", "type": "long"}, {"name": "m", "type": "long"}],
    }
    for new in (retyped, required_added):
        with pytest.raises(IncompatibleSchemaError, match="files/things changed incompatibly"):
            check_backward(new, old, "files/things")
    check_backward(
        {
            **old,
            "fields": old["fields"] + [{"name": "o", "type": ["null", "long"], "default": None}],
        },
        old,
        "x",
    )


def test_envelope_embeds_the_record_schema() -> None:
    env = envelope_schema("my-sys", "time entries", RECORD)
    assert env.name == "synchub.source.my_sys.time_entries.Changed"
    assert [f["name"] for f in record_schema_of(env)["fields"]] == ["id", "n", "note"]
    assert next(f["name"] for f in json.loads(env.json)["fields"]) == "digest"


@given(
    digest=st.binary(min_size=8, max_size=8),
    op=st.sampled_from(sorted(OPS)),
    key=st.text(),
    position=st.text(),
    source_time=st.none()
    | st.datetimes(timezones=st.none() | st.just(dt.UTC))
    | st.datetimes(timezones=st.timezones()),
    captured=st.integers(min_value=0, max_value=2**62),
    connector=st.text(),
    record=st.none()
    | st.fixed_dictionaries(
        {"id": st.text(), "n": st.integers(-(2**63), 2**63 - 1), "note": st.none() | st.text()}
    ),
)
def test_envelope_fast_path_matches_fastavro_byte_for_byte(
    digest, op, key, position, source_time, captured, connector, record
) -> None:
    env = envelope_schema("s", "o", RECORD)
    fast = Envelope(env, RECORD)
    body = None if record is None else fast.body(record)
    tail = envelope_tail(captured, connector)
    encoded = fast.encode(digest, OPS[op], key, position, source_time, tail, body)
    full = io.BytesIO()
    full.write(MAGIC + env.fingerprint)
    fastavro.schemaless_writer(
        full,
        env.parsed,
        {
            "digest": digest,
            "op": op,
            "key": key,
            "position": position,
            "source_time": None if source_time is None else micros(source_time),
            "captured_at": captured,
            "connector": connector,
            "after": record,
        },
    )
    assert encoded == full.getvalue()


@given(st.integers(-(2**63), 2**63 - 1) | st.integers(-(2**20), 2**20))
def test_avro_long_matches_fastavro(n: int) -> None:
    full = io.BytesIO()
    fastavro.schemaless_writer(full, "long", n)
    assert avro_long(n) == full.getvalue()


def test_hub_schemas_load() -> None:
    for name in (
        "checkpoint_advanced",
        "record_quarantined",
        "mapping_deployed",
        "delta_planned",
        "write_attempted",
        "exception_action",
        "plan_failed",
        "connector_failed",
    ):
        assert hub_schema(name).name.startswith("synchub.hub.")


def test_canonical_model_v2_has_the_operating_loops_entities_and_fields() -> None:
    """Issue 9: the CRM, rate cards, staffing, payments and legal entities are canonical;
    the v1 entities gain their legal entity and what the workflows need, as optional fields
    (each new version reads the data of the one before: test above)."""
    from hub.schemas import canonical_fields

    fields = canonical_fields()
    assert {"LegalEntity", "Contact", "Opportunity", "RateCard", "Assignment", "Payment"} <= set(
        fields
    )
    for entity in ("Account", "Person", "Project", "Invoice", "Opportunity", "RateCard"):
        assert "legal_entity_id" in fields[entity], entity
    assert {"state", "amount", "currency", "probability", "expected_close", "service_line"} <= set(
        fields["Opportunity"]
    )
    assert {"labor_category", "currency", "hourly_rate", "valid_from", "valid_to"} <= set(
        fields["RateCard"]
    )
    assert {"labor_category", "approval_status", "approved_by", "approved_at"} <= set(
        fields["TimeEntry"]
    )
    assert {"tax_profile", "currency"} <= set(fields["Account"])
    assert {"billing_method", "service_line", "start_date"} <= set(fields["Project"])
    for entity in fields:  # every field says what it is
        for f in canonical_versions(entity)[-1].parsed["fields"]:
            assert f.get("doc"), (entity, f["name"])
