"""Canonical changes published to a real Kafka broker (tests/kafka_broker.py), on both store
backends: every change once, in order per key, across SIGKILLs of the publisher; corrections
after a rebuild; the same changes from `synchub subscribe` on Kafka and on the store; a
published message decoded by a second Avro implementation (Apache avro) from the .avsc that
`synchub topics --avsc` writes."""

from __future__ import annotations

import io
import json
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import avro.io
import avro.schema
import pytest
import yaml
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from hub.kafka_config import KafkaSettings
from tests.avro_spec import crc64_avro
from tests.integration.conftest import Firm, entries

BOTH_BACKENDS = True


def _configure(firm: Firm, kafka: dict[str, Any], **extra: Any) -> KafkaSettings:
    config = yaml.safe_load(firm.config.read_text())
    config["kafka"] = {**kafka, **extra}
    firm.config.write_text(yaml.safe_dump(config))
    return KafkaSettings(**config["kafka"])


def _messages(settings: KafkaSettings, topic: str) -> list[Any]:
    """Every committed message of `topic`, partition by partition (read_committed)."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.bootstrap_servers,
            "group.id": "test-reader",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
        }
    )
    try:
        parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        pending, out = set(parts), []
        while pending:
            msg = consumer.poll(5.0)
            assert msg is not None, f"no end of {topic} reached"
            if msg.error():
                assert msg.error().code() == KafkaError._PARTITION_EOF, msg.error()
                pending.discard(msg.partition())
                continue
            out.append(msg)
        return out
    finally:
        consumer.close()


def _changes(settings: KafkaSettings) -> list[dict[str, Any]]:
    from hub.publish.topics import builtin

    out = []
    for topic in (settings.topic_prefix + "time_entry", settings.topic_prefix + "person"):
        for msg in _messages(settings, topic):
            d = builtin().decode(msg.value())
            headers = {k: v.decode() for k, v in msg.headers()}
            out.append({**d, "headers": headers, "key": msg.key().decode()})
    return out


def _subscribed(firm: Firm, *args: str) -> list[dict[str, Any]]:
    proc = firm.run("subscribe", "TimeEntry", "--from-beginning", "--no-follow", "--json", *args)
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


def _check_once_in_order(changes: list[dict[str, Any]]) -> None:
    seen = Counter((c["canonical_id"], c["position"], c["headers"]["synchub.seq"]) for c in changes)
    assert seen and max(seen.values()) == 1, [k for k, n in seen.items() if n > 1][:5]
    per_key: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for c in changes:
        assert c["key"] == c["canonical_id"]
        per_key[c["key"]].append((c["position"], int(c["headers"]["synchub.seq"])))
    for places in per_key.values():
        assert places == sorted(places)


def test_every_change_published_once_and_idle_pass_publishes_nothing(
    firm: Firm, kafka: dict[str, Any]
) -> None:
    settings = _configure(firm, kafka)
    firm.write_entries("time_1.csv", entries(30))
    first = firm.json("sync", "--once")
    assert first["published"]["published"] > 30, first
    changes = _changes(settings)
    _check_once_in_order(changes)
    assert len(changes) == first["published"]["published"]
    one = next(c for c in changes if c["canonical_id"] == "TimeEntry/e1")
    assert one["op"] == "create" and one["after"]["minutes"] == 16
    assert one["after"]["id"] == "e1" and one["before"] is None
    headers = one["headers"]
    assert headers["synchub.system"] == "tracker" and headers["synchub.mapping_version"] == "1"
    assert headers["synchub.correlation_id"].startswith("tracker/time_entries/e1@")
    # the state topic: the latest state per key, as the store says now
    state = {
        m.key().decode(): m.value()
        for m in _messages(settings, kafka["topic_prefix"] + "time_entry.state")
    }
    assert len(state) == 30

    # the outcome of every write, latest per target record, on the writes topic
    outcomes = {
        m.key().decode(): json.loads(m.value()) for m in _messages(settings, kafka["writes_topic"])
    }
    assert len(outcomes) == 15  # the approved half, written to erp
    e0 = outcomes["erp/timesheet_lines/TimeEntry/e0"]
    assert e0["status"] == "applied" and e0["canonical_id"] == "TimeEntry/e0"

    # idle passes: nothing published, no offset moves
    ends = len(_messages(settings, kafka["topic_prefix"] + "time_entry"))
    for _ in range(2):
        idle = firm.json("sync", "--once")
        assert idle["published"]["published"] == 0 and idle["published"]["transactions"] == 0
        assert idle["published"]["writes"] == 0
    assert len(_messages(settings, kafka["topic_prefix"] + "time_entry")) == ends
    assert len(_messages(settings, kafka["writes_topic"])) == len(outcomes)

    # a change: an update with the state before and after
    rows = entries(30)
    rows[3]["minutes"] = 99
    firm.write_entries("time_1.csv", rows)
    again = firm.run("sync", "--once")
    assert again.returncode in (0, 2), again.stderr
    changes = _changes(settings)
    _check_once_in_order(changes)
    e3 = [c for c in changes if c["canonical_id"] == "TimeEntry/e3"]
    assert e3[-1]["op"] == "update" and e3[-1]["changed"] == ["minutes"]
    assert e3[-1]["before"]["minutes"] == 18 and e3[-1]["after"]["minutes"] == 99

    # subscribe: the same decoded changes from Kafka and from the store
    from_kafka = _subscribed(firm)
    from_store = _subscribed(firm, "--store")
    key = lambda c: (c["position"], c["canonical_id"])  # noqa: E731
    assert sorted(from_kafka, key=key) == sorted(from_store, key=key)
    assert len(from_store) == len(
        [c for c in changes if c["canonical_id"].startswith("TimeEntry/")]
    )


@pytest.mark.parametrize("point", ["publish.before_commit:2", "publish.after_commit:2"])
def test_publisher_killed_mid_transaction_publishes_nothing_twice(
    firm: Firm, kafka: dict[str, Any], point: str
) -> None:
    settings = _configure(firm, kafka, batch=7)
    firm.write_entries("time_1.csv", entries(40))
    crashed = firm.run("sync", "--once", crash_at=point)
    assert crashed.returncode == -9, crashed.stderr
    after = firm.json("sync", "--once")
    assert after["published"]["published"] > 0
    changes = _changes(settings)
    _check_once_in_order(changes)
    everything = _subscribed(firm, "--store")
    assert len([c for c in changes if c["canonical_id"].startswith("TimeEntry/")]) == len(
        everything
    )
    idle = firm.json("sync", "--once")
    assert idle["published"]["published"] == 0
    # what was sent was the published form the catch-ups made (no change folded again)
    assert firm.query("SELECT count(*) FROM p_audit WHERE avro IS NULL") == [(0,)]


def test_rebuild_publishes_corrections_as_ordinary_changes(
    firm: Firm, kafka: dict[str, Any]
) -> None:
    firm.write_entries("time_1.csv", entries(10))
    assert firm.run("sync", "--once").returncode in (0, 2)  # not published yet
    # a projection gone wrong (as a mapping bug would make it): one audit row says 999 min,
    # and that is what gets published
    firm.execute(
        "UPDATE p_audit SET new = replace(new, '\"minutes\":17', '\"minutes\":999')"
        " WHERE canonical_id = 'TimeEntry/e2'"
    )
    settings = _configure(firm, kafka)
    assert firm.run("publish").returncode == 0
    published = [c for c in _changes(settings) if c["canonical_id"] == "TimeEntry/e2"]
    assert published[-1]["after"]["minutes"] == 999
    # the rebuild puts the projections right; the next publish corrects the consumers
    assert firm.run("rebuild").returncode == 0
    fixed = firm.json("publish")
    assert fixed["corrections"] == 1, fixed
    changes = _changes(settings)
    last = [c for c in changes if c["canonical_id"] == "TimeEntry/e2"][-1]
    assert last["op"] == "update" and last["changed"] == ["minutes"]
    assert last["before"]["minutes"] == 999 and last["after"]["minutes"] == 17
    state = {
        m.key().decode(): m.value()
        for m in _messages(settings, kafka["topic_prefix"] + "time_entry.state")
    }
    from hub.publish.topics import builtin

    assert builtin().decode(state["TimeEntry/e2"])["minutes"] == 17
    assert firm.json("publish")["published"] == 0  # and then idle


def test_corrections_go_in_transactions_of_a_batch_once_across_a_crash(
    firm: Firm, kafka: dict[str, Any]
) -> None:
    firm.write_entries("time_1.csv", entries(10))
    assert firm.run("sync", "--once").returncode in (0, 2)  # not published yet
    wrong = [f"TimeEntry/e{i}" for i in range(1, 6)]  # 5 corrections: transactions of 2
    firm.execute(
        "UPDATE p_audit SET new = replace(new, '\"minutes\":', '\"minutes\":9')"
        f" WHERE canonical_id IN ({', '.join(repr(c) for c in wrong)})"
    )
    settings = _configure(firm, kafka, batch=2)
    assert firm.run("publish").returncode == 0
    assert firm.run("rebuild").returncode == 0
    # killed right after the first transaction of corrections committed
    crashed = firm.run("publish", crash_at="publish.reconcile_part")
    assert crashed.returncode == -9, crashed.stderr
    fixed = firm.json("publish")
    assert fixed["corrections"] == 3 and fixed["transactions"] == 2, fixed
    per_key = defaultdict(list)
    for c in _changes(settings):
        per_key[c["canonical_id"]].append(c)
    for cid in wrong:  # in order per key: the wrong create, then its correction once
        create, correction = per_key[cid]
        assert create["op"] == "create" and correction["op"] == "update"
        assert correction["changed"] == ["minutes"]
        assert correction["before"]["minutes"] == 900 + correction["after"]["minutes"]
    state = {
        m.key().decode(): m.value()
        for m in _messages(settings, kafka["topic_prefix"] + "time_entry.state")
    }
    from hub.publish.topics import builtin

    assert [builtin().decode(state[c])["minutes"] for c in wrong] == [16, 17, 18, 19, 20]
    idle = firm.json("publish")
    assert idle["published"] == 0 and idle["corrections"] == 0 and idle["transactions"] == 0


def _spec_canonical_form(schema: Any) -> bytes:
    """Apache avro's (1.12, Python) parsing canonical form, with the spec's [PRIMITIVES] rule
    applied after [STRIP]: it leaves `{"type":"int"}` where a logical type was stripped, where
    the spec (and Java's SchemaNormalization) say `"int"`; the fingerprint is of the latter."""
    return re.sub(r'\{"type":"(\w+)"\}', r'"\1"', schema.canonical_form).encode()


def test_a_second_avro_implementation_decodes_what_is_published(
    firm: Firm, kafka: dict[str, Any], tmp_path: Path
) -> None:
    settings = _configure(firm, kafka)
    firm.write_entries("time_1.csv", entries(3))
    assert firm.run("sync", "--once").returncode in (0, 2)
    out = tmp_path / "avsc"
    assert firm.run("topics", "--avsc", str(out)).returncode == 0
    schema = avro.schema.parse((out / "time_entry.change.avsc").read_text())
    msg = _messages(settings, kafka["topic_prefix"] + "time_entry")[0]
    value = msg.value()
    assert value[:2] == b"\xc3\x01"
    assert value[2:10] == crc64_avro(_spec_canonical_form(schema))
    datum = avro.io.DatumReader(schema).read(avro.io.BinaryDecoder(io.BytesIO(value[10:])))
    assert datum["canonical_id"] == msg.key().decode()
    assert datum["op"] == "create" and datum["after"]["minutes"] in (15, 16, 17)
    assert str(datum["after"]["date"]).startswith("2026-11-")
