"""Reading canonical changes as a downstream consumer: from Kafka topics, or straight from an
embedded store (no Kafka). Both yield the same decoded `CanonicalChange`s.

    from hub.publish.consumer import from_kafka
    for change in from_kafka(settings.kafka, ["TimeEntry"], from_beginning=True):
        print(change.canonical_id, change.op, change.after)

Delivery: read_committed (only what the publisher committed), in store order per canonical id.
With a `group_id` the offsets are committed after each change is yielded and handled (the
next `next()`), so a consumer that dies re-reads at most the change it was handling.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any, NamedTuple

from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, KafkaError, TopicPartition

from hub.errors import SyncHubError
from hub.kafka_config import KafkaSettings
from hub.publish import feed
from hub.publish.admin import KAFKA_LOG
from hub.publish.feed import Place
from hub.publish.topics import TopicSchemas, snake
from hub.store.base import EventStore
from hub.values import to_json as jsonable

__all__ = ["CanonicalChange", "from_kafka", "from_store"]


class CanonicalChange(NamedTuple):
    """One published change, decoded (values in their JSON form: dates and times as ISO text,
    decimals as text)."""

    entity: str
    canonical_id: str
    op: str
    position: int
    changed: list[str]
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    mapping_version: int
    system: str
    correlation_id: str

    def to_dict(self) -> dict[str, Any]:
        return self._asdict()


def _headers(raw: Any) -> dict[str, str]:
    """A message's headers as text (synchub writes each once, as UTF-8)."""
    return {str(k): (v or b"").decode() for k, v in raw or []}


def _as_published(
    schemas: TopicSchemas, entity: str, cid: str, fields: dict[str, Any] | None
) -> dict[str, Any] | None:
    """A state as a consumer of the topics decodes it (so both sources read the same)."""
    value = schemas.encode_state(entity, cid, fields)
    return None if value is None else jsonable(schemas.decode(value))


def from_store(
    store: EventStore,
    schemas: TopicSchemas,
    entities: list[str],
    *,
    after: int | None = None,
    follow: bool = False,
    poll: float = 1.0,
    batch: int = 1000,
) -> Iterator[CanonicalChange]:
    """Changes of `entities` from an embedded store: after store position `after` (0: from
    the beginning; None: only new ones), then, with `follow`, new ones as they come."""
    wanted = set(entities)
    with store.db.transaction(commit=False) as c:
        start = feed.upto(c, store) if after is None else after
    place = Place(start, 1 << 62) if start else Place()
    while True:
        with store.db.transaction(commit=False) as c:
            changes = feed.read(c, store, place, batch)
        for ch in changes:
            place = ch.place
            if ch.entity in wanted:
                yield CanonicalChange(
                    ch.entity,
                    ch.canonical_id,
                    ch.op,
                    ch.position,
                    ch.changed,
                    _as_published(schemas, ch.entity, ch.canonical_id, ch.before),
                    _as_published(schemas, ch.entity, ch.canonical_id, ch.after),
                    ch.mapping_version,
                    ch.system,
                    ch.correlation_id,
                )
        if len(changes) < batch:
            if not follow:
                return
            time.sleep(poll)


def from_kafka(
    settings: KafkaSettings,
    schemas: TopicSchemas,
    entities: list[str],
    *,
    from_beginning: bool = False,
    after: int | None = None,
    follow: bool = False,
    group_id: str | None = None,
    options: dict[str, Any] | None = None,
) -> Iterator[CanonicalChange]:
    """Changes of `entities` from their change topics (read_committed): from the beginning,
    after store position `after` (read from the beginning, earlier ones skipped), or only new
    ones; with `follow` until the caller stops, else until the end of every partition."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.bootstrap_servers,
            "group.id": group_id or f"synchub-subscribe-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
            "logger": KAFKA_LOG,
            **(options or {}),
        }
    )
    try:
        topics = [settings.topic_prefix + snake(e) for e in entities]
        metadata = consumer.list_topics(timeout=30)
        missing = [t for t in topics if t not in metadata.topics]
        if missing:
            raise SyncHubError(
                f"no topic {', '.join(missing)} on {settings.bootstrap_servers} yet: nothing "
                "was published for it (is `kafka:` configured and `synchub run` publishing?)"
            )
        start = OFFSET_BEGINNING if from_beginning or after is not None else OFFSET_END
        partitions = [
            TopicPartition(t, p, start) for t in topics for p in metadata.topics[t].partitions
        ]
        if group_id is None:
            consumer.assign(partitions)
        else:
            consumer.subscribe(topics)
        pending = {(tp.topic, tp.partition) for tp in partitions}
        while follow or pending:
            msg = consumer.poll(1.0)
            if msg is None:
                continue
            error = msg.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    pending.discard((msg.topic(), msg.partition()))
                    continue
                raise SyncHubError(f"reading {msg.topic()}: {error.str()}")
            value = msg.value()
            if value is None:
                continue
            d = schemas.decode(value)
            headers = _headers(msg.headers())
            if after is not None and d["position"] <= after:
                continue
            yield CanonicalChange(
                d["canonical_id"].split("/", 1)[0],
                d["canonical_id"],
                d["op"],
                d["position"],
                list(d["changed"]),
                jsonable(d["before"]),
                jsonable(d["after"]),
                int(headers.get("synchub.mapping_version", 0)),
                headers.get("synchub.system", ""),
                headers.get("synchub.correlation_id", ""),
            )
            if group_id is not None:
                consumer.commit(message=msg, asynchronous=False)
    finally:
        consumer.close()
