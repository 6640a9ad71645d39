"""Kafka topics the publisher needs, made with explicit partitions, replication and cleanup
policy, and reading a compacted topic back from its beginning (read_committed)."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from hub.errors import SyncHubError
from hub.kafka_config import KafkaSettings
from hub.publish.topics import snake

__all__ = ["KAFKA_LOG", "Topics", "connection_options", "read_all"]

KAFKA_LOG = logging.getLogger("synchub.kafka")
"""Where the Kafka clients' own log lines go (not to stderr directly)."""


def connection_options(extra: dict[str, Any] | None) -> dict[str, Any]:
    """Of a producer's or consumer's extra settings, those an admin client shares: how to
    connect (security.*, sasl.*, ssl.*, client.*)."""
    return {
        k: v
        for k, v in (extra or {}).items()
        if k.split(".")[0] in ("security", "sasl", "ssl", "client")
    }


class Topics:
    """Makes the topics of entities (change + compacted state) and the checkpoint topic."""

    def __init__(self, settings: KafkaSettings, options: dict[str, Any]) -> None:
        self.settings = settings
        config: dict[str, Any] = {
            "bootstrap.servers": settings.bootstrap_servers,
            "logger": KAFKA_LOG,
            **options,
        }
        self.client = AdminClient(config)
        self._made: set[str] = set()

    def names(self, entity: str) -> tuple[str, str]:
        """(change topic, state topic) of a canonical entity."""
        base = self.settings.topic_prefix + snake(entity)
        return base, base + ".state"

    def ensure(self, entities: Iterable[str]) -> None:
        """Make the topics of `entities` that do not exist yet."""
        s = self.settings
        wanted = []
        for entity in entities:
            change, state = self.names(entity)
            wanted.append(NewTopic(change, s.partitions, s.replication_factor))
            wanted.append(
                NewTopic(
                    state,
                    s.partitions,
                    s.replication_factor,
                    config={"cleanup.policy": "compact"},
                )
            )
        self._create(wanted)

    def ensure_outbound(self, targets: Iterable[str]) -> None:
        """Make the pending-writes topics of the workers' targets."""
        s = self.settings
        self._create(
            [NewTopic(s.outbound_prefix + t, s.partitions, s.replication_factor) for t in targets]
        )

    def ensure_writes_topic(self) -> None:
        """The compacted topic of write outcomes (kafka.writes_topic), when it is published."""
        s = self.settings
        if s.writes_topic:
            self._create(
                [NewTopic(s.writes_topic, s.partitions, s.replication_factor,
                          config={"cleanup.policy": "compact"})]
            )  # fmt: skip

    def ensure_checkpoint_topic(self) -> None:
        self._create(
            [
                NewTopic(
                    self.settings.checkpoint_topic,
                    1,
                    self.settings.replication_factor,
                    config={"cleanup.policy": "compact"},
                )
            ]
        )

    def _create(self, topics: list[NewTopic]) -> None:
        topics = [t for t in topics if t.topic not in self._made]
        if not topics:
            return
        try:
            existing = set(self.client.list_topics(timeout=30).topics)
        except KafkaException as e:
            raise _unreachable(self.settings, e) from e
        missing = [t for t in topics if t.topic not in existing]
        if missing:
            for topic, future in self.client.create_topics(missing, request_timeout=30).items():
                try:
                    future.result()
                except KafkaException as e:
                    if e.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                        raise SyncHubError(
                            f"could not create Kafka topic {topic!r}: {e.args[0].str()}; check "
                            "kafka.partitions / kafka.replication_factor against the cluster "
                            "and the principal's CREATE permission"
                        ) from e
        self._made.update(t.topic for t in topics)


def _unreachable(settings: KafkaSettings, e: KafkaException) -> SyncHubError:
    return SyncHubError(
        f"Kafka at {settings.bootstrap_servers} cannot be reached ({e.args[0].str()}); check "
        "kafka.bootstrap_servers and that the brokers are up"
    )


def read_all(
    settings: KafkaSettings, topics: list[str], options: dict[str, Any], timeout: float = 120.0
) -> Iterator[tuple[bytes, bytes | None]]:
    """Every committed (key, value) of `topics` from the beginning to their current end, per
    partition in offset order (a compacted topic's last value per key wins)."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.bootstrap_servers,
            "group.id": f"synchub-reader-{uuid.uuid4().hex[:8]}",  # never committed
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
            "logger": KAFKA_LOG,
            **options,
        }
    )
    try:
        metadata = consumer.list_topics(timeout=30)
        partitions = [
            TopicPartition(t, p, OFFSET_BEGINNING)
            for t in topics
            if t in metadata.topics
            for p in metadata.topics[t].partitions
        ]
        if not partitions:
            return
        consumer.assign(partitions)
        pending = {(tp.topic, tp.partition) for tp in partitions}
        deadline = time.monotonic() + timeout
        while pending:
            if time.monotonic() > deadline:
                raise SyncHubError(
                    f"reading {', '.join(topics)} back did not reach their end in {timeout:.0f} s"
                )
            for msg in consumer.consume(10_000, 1.0):
                error = msg.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        pending.discard((msg.topic(), msg.partition()))
                        continue
                    raise SyncHubError(f"reading {msg.topic()}: {error.str()}")
                key = msg.key()
                if key is not None:
                    yield key, msg.value()
    finally:
        consumer.close()
