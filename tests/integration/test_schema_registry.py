"""Publishing with a schema registry (a real Apicurio Registry 3, Confluent-compatible API):
values in the Confluent wire format, schemas registered under `<topic>-value`, decoded by
Confluent's own deserializer; a registry that refuses a schema stops publishing with a clear
error and nothing half-published, and the hub goes on."""

from __future__ import annotations

import json
from typing import Any

import httpx
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from tests.integration.conftest import Firm, entries
from tests.integration.test_publish import _check_once_in_order, _configure, _messages, _subscribed
from tests.schema_registry import Registry


def _with_registry(firm: Firm, kafka: dict[str, Any], registry: Registry) -> Any:
    return _configure(firm, kafka, schema_registry={"url": registry.url})


def test_values_in_the_confluent_wire_format_decoded_by_confluents_deserializer(
    firm: Firm, kafka: dict[str, Any], schema_registry: Registry
) -> None:
    settings = _with_registry(firm, kafka, schema_registry)
    firm.write_entries("time_1.csv", entries(12))
    first = firm.json("sync", "--once")
    assert first["published"]["published"] > 12, first
    topic = kafka["topic_prefix"] + "time_entry"
    client = SchemaRegistryClient({"url": schema_registry.url})
    change_id = client.get_latest_version(f"{topic}-value").schema_id
    state_id = client.get_latest_version(f"{topic}.state-value").schema_id
    assert change_id != state_id

    deserialize = AvroDeserializer(SchemaRegistryClient({"url": schema_registry.url}))
    decoded = []
    for msg in _messages(settings, topic):
        value = msg.value()
        assert value[:1] == b"\x00" and int.from_bytes(value[1:5], "big") == change_id
        d = deserialize(value, SerializationContext(topic, MessageField.VALUE))
        headers = {k: v.decode() for k, v in msg.headers()}
        decoded.append({**d, "headers": headers, "key": msg.key().decode()})
    _check_once_in_order(decoded)
    assert len(decoded) == 12
    e1 = next(d for d in decoded if d["canonical_id"] == "TimeEntry/e1")
    assert e1["op"] == "create" and e1["after"]["minutes"] == 16 and e1["before"] is None
    states = _messages(settings, topic + ".state")
    assert {int.from_bytes(m.value()[1:5], "big") for m in states} == {state_id}
    state = deserialize(
        states[0].value(), SerializationContext(topic + ".state", MessageField.VALUE)
    )
    assert state["id"] == states[0].key().decode().split("/", 1)[1]

    # the same decoded changes through `synchub subscribe`, from Kafka and from the store
    key = lambda c: (c["position"], c["canonical_id"])  # noqa: E731
    assert sorted(_subscribed(firm), key=key) == sorted(_subscribed(firm, "--store"), key=key)

    # a restarted hub registers nothing new; an idle pass publishes nothing
    for _ in range(2):
        idle = firm.json("sync", "--once")
        assert idle["published"]["published"] == 0 and idle["published"]["transactions"] == 0
    assert client.get_versions(f"{topic}-value") == [1]
    assert len(_messages(settings, topic)) == 12

    listed = firm.json("topics", "--json")
    row = next(r for r in listed if r["entity"] == "TimeEntry")
    assert row["change_subject"] == f"{topic}-value"


def test_a_schema_the_registry_refuses_stops_publishing_with_a_clear_error(
    firm: Firm, kafka: dict[str, Any], schema_registry: Registry
) -> None:
    settings = _with_registry(firm, kafka, schema_registry)
    topic = kafka["topic_prefix"] + "time_entry"
    subject = f"{topic}-value"
    client = SchemaRegistryClient({"url": schema_registry.url})
    other = {"type": "record", "name": "Other", "fields": [{"name": "x", "type": "string"}]}
    client.register_schema(subject, Schema(json.dumps(other), "AVRO"))
    client.set_compatibility(subject, "BACKWARD")

    firm.write_entries("time_1.csv", entries(5))
    refused = firm.run("sync", "--once", "--json")
    assert refused.returncode == 1, refused.stderr  # a pass with errors
    report = json.loads(refused.stdout)
    message = " ".join(report["errors"])
    assert f"refused the schema of {subject}" in message and "HTTP 409" in message
    assert "compatibility" in message and "Traceback" not in refused.stderr
    assert sum(r["appended"] for r in report["ingest"]) >= 5 and report["projected"]  # went on
    assert report["published"] is None
    with httpx.Client() as http:  # no change topic was made, nothing was sent
        assert http.get(f"{schema_registry.url}/subjects/{subject}/versions").json() == [1]
    published = settings.checkpoint_topic
    assert not _topic_has_messages(settings, published)

    # the operator lets the subject go; the next pass publishes everything, once
    client.set_compatibility(subject, "NONE")
    fixed = firm.json("sync", "--once")
    assert fixed["published"]["published"] >= 5  # the entries, and the people they name
    assert len(_messages(settings, topic)) == 5


def _topic_has_messages(settings: Any, topic: str) -> bool:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": settings.bootstrap_servers})
    if topic not in admin.list_topics(timeout=10).topics:
        return False
    return bool(_messages(settings, topic))
