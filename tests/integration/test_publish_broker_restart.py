"""The Kafka broker crashes (SIGKILL) and comes back under `synchub run`: the hub says so in
one line per pass, keeps capturing, and once the broker is back publishes what it could not,
each change once and in order per key (the test's own broker: tests/kafka_broker.py)."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest
import yaml

from hub.kafka_config import KafkaSettings
from tests import kafka_broker
from tests.integration.conftest import Firm, entries, wait_for
from tests.integration.test_publish import _changes, _check_once_in_order, _subscribed


@pytest.fixture
def own_broker() -> Iterator[kafka_broker.Broker]:
    broker = kafka_broker.start(own=True)
    try:
        yield broker
    finally:
        broker.stop()


def test_publishing_survives_a_broker_crash(firm: Firm, own_broker: kafka_broker.Broker) -> None:
    prefix = own_broker.topic_prefix()
    kafka = {
        "bootstrap_servers": own_broker.bootstrap,
        "topic_prefix": prefix + "canonical.",
        "checkpoint_topic": prefix + "published",
        "transactional_id": prefix + "publisher",
    }
    config = yaml.safe_load(firm.config.read_text())
    config["kafka"] = kafka
    config["poll_interval"] = 0.3
    firm.config.write_text(yaml.safe_dump(config))
    settings = KafkaSettings(**kafka)
    firm.write_entries("time_1.csv", entries(10))
    hub = firm.start("run")
    try:
        assert wait_for(lambda: len(_changes(settings)) >= 14, 60)  # 10 entries, 4 people
        own_broker.restart(kill=True, down=8.0, during=lambda: firm.write_entries(
            "time_2.csv", entries(20, start=10)
        ))  # fmt: skip
        assert wait_for(lambda: len(_changes(settings)) >= 34, 120)
    finally:
        hub.send_signal(signal.SIGINT)
        stdout, stderr = hub.communicate(timeout=120)
    assert hub.returncode == 0, stderr
    said = " ".join((stdout + stderr).split())
    assert "publishing to Kafka at" in said  # said while the broker was down
    assert "cannot be reached" in said or "failed" in said
    assert "Traceback" not in said and "rdkafka" not in said
    changes = _changes(settings)
    _check_once_in_order(changes)
    from_store = _subscribed(firm, "--store")
    time_entries = [c for c in changes if c["canonical_id"].startswith("TimeEntry/")]
    assert len(time_entries) == len(from_store) == 30
