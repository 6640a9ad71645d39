"""The publisher: the canonical change feed → Kafka topics, exactly once.

Each Kafka transaction carries a batch of changes (to `<prefix><entity>` and the compacted
`<prefix><entity>.state`) **and** the feed place they reach, written to the compacted
checkpoint topic (`kafka.checkpoint_topic`, keyed by the transactional id). On start the
producer's `init_transactions` fences any earlier instance and aborts its open transaction;
the place is then read back (read_committed) from the checkpoint topic. So a crash at any
point publishes nothing twice and skips nothing: what a read_committed consumer sees is what
the last committed checkpoint says (the way Kafka Connect's exactly-once source connectors
keep their offsets, KIP-618).

After a rebuild of the projections (feed.generation moved) the changes already published may
differ from the rewritten history. The publisher then reads the compacted state topics back,
compares them with the state now, and publishes each difference as an ordinary change
(create, update, or delete with a tombstone), in one transaction with the new checkpoint: the
consumers converge without re-reading history.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer

from hub.crashpoints import crashpoint
from hub.errors import SyncHubError
from hub.kafka_config import KafkaSettings
from hub.perf import paused_gc
from hub.publish import admin, feed, reconcile
from hub.publish.admin import KAFKA_LOG
from hub.publish.feed import FeedChange, Place
from hub.publish.registry import SchemaRegistry
from hub.publish.topics import TopicSchemas, fingerprint, snake
from hub.store.base import EventStore
from projections import outbound

__all__ = ["Checkpoint", "PublishReport", "Publisher"]

log = logging.getLogger("synchub.publish")

Progress = Callable[[int], None]
Message = tuple[str, bytes, bytes | None, list[tuple[str, str | bytes | None]]]
"""(topic, key, value, headers) of one produced message."""

REACH_TIMEOUT = 5.0
"""Seconds a pass waits for the brokers to answer before it says they cannot be reached."""
COMMIT_TIMEOUT = 60.0
"""Seconds a transaction's start or commit may take (then it is aborted and tried again)."""


@dataclass(frozen=True)
class Checkpoint:
    """What the last committed transaction published up to."""

    place: Place = Place(0, 0)  # noqa: RUF009 - an immutable tuple
    generation: int = 0
    outbound: int = 0
    """The outbound projection's position the pending writes were published up to."""

    def to_bytes(self) -> bytes:
        return json.dumps(
            {
                "position": self.place.position,
                "seq": self.place.seq,
                "generation": self.generation,
                "outbound": self.outbound,
            }
        ).encode()

    @classmethod
    def from_bytes(cls, value: bytes) -> Checkpoint:
        d = json.loads(value)
        return cls(
            Place(int(d["position"]), int(d["seq"])),
            int(d["generation"]),
            int(d.get("outbound", 0)),
        )


@dataclass
class PublishReport:
    """One publishing pass: changes sent, corrections after a rebuild, where the feed is."""

    published: int = 0
    corrections: int = 0
    writes: int = 0
    """Messages about writes: pending ones for `synchub worker outbound` processes
    (kafka.outbound_targets), and settled outcomes (kafka.writes_topic)."""
    transactions: int = 0
    position: int = 0


def _json(value: dict[str, Any]) -> bytes:
    return json.dumps(value, sort_keys=True).encode()


def producer_config(settings: KafkaSettings, extra: dict[str, Any] | None) -> dict[str, Any]:
    """The publisher's producer settings (bench/publish.py's baseline uses the same)."""
    return {
        "bootstrap.servers": settings.bootstrap_servers,
        "transactional.id": settings.transactional_id,
        "enable.idempotence": True,
        "partitioner": "murmur2_random",  # key → partition as Java clients do
        "linger.ms": 5,
        "compression.type": "lz4",
        "queue.buffering.max.messages": 1_000_000,
        "transaction.timeout.ms": 300_000,
        "logger": KAFKA_LOG,
        **(extra or {}),
    }


class Publisher:
    """Publishes one store's canonical changes (see the module's doc). One per store at a time
    (the hub's `publish` lease; Kafka fences a second with the same transactional id)."""

    def __init__(
        self,
        store: EventStore,
        settings: KafkaSettings,
        schemas: TopicSchemas,
        *,
        producer_options: dict[str, Any] | None = None,
        consumer_options: dict[str, Any] | None = None,
        registry_options: dict[str, Any] | None = None,
    ) -> None:
        self.store = store
        self.registry_options = registry_options or {}
        self.settings = settings
        self.schemas = schemas
        self.consumer_options = consumer_options or {}
        self.producer = Producer(producer_config(settings, producer_options))
        self.admin = admin.Topics(settings, admin.connection_options(producer_options))
        self.checkpoint = Checkpoint()
        self._started = False
        self._names: dict[str, tuple[str, str, tuple[str, bytes]]] = {}
        self._bodies: dict[str, bytes] = {}
        """Canonical id → the Avro body of its state after the last change sent in the
        current transaction (the next change's `before`); emptied per transaction."""

    # -- start ------------------------------------------------------------------------------------

    def start(self) -> None:
        """Register the schemas (with a registry), make the topics, fence earlier instances,
        read the checkpoint back."""
        if self.registry_options.get("url"):
            SchemaRegistry(self.registry_options).attach(self.schemas, self.settings.topic_prefix)
        self.admin.ensure_checkpoint_topic()
        self.admin.ensure(self.schemas.entities())
        self.producer.init_transactions(COMMIT_TIMEOUT)
        self.checkpoint = self._read_checkpoint()
        self._started = True
        log.info(
            "publishing from position %s (generation %s)",
            self.checkpoint.place.position,
            self.checkpoint.generation,
        )

    def _read_checkpoint(self) -> Checkpoint:
        key = self.settings.transactional_id.encode()
        found = Checkpoint()
        for k, value in admin.read_all(
            self.settings, [self.settings.checkpoint_topic], self.consumer_options
        ):
            if k == key and value is not None:
                found = Checkpoint.from_bytes(value)
        return found

    def close(self) -> None:
        self.producer.flush(30)

    # -- a pass -----------------------------------------------------------------------------------

    def publish(self, progress: Progress | None = None) -> PublishReport:
        """Everything the feed holds after the checkpoint, in transactions of `batch`."""
        # a broker that cannot be reached fails this pass in seconds, not at a commit's timeout
        self.producer.list_topics(self.settings.checkpoint_topic, timeout=REACH_TIMEOUT)
        if not self._started:
            self.start()
        report = PublishReport(position=self.checkpoint.place.position)
        while True:
            # a batch allocates ~10 short-lived objects a change and makes no cycles: the
            # collector's passes over them (and over a hub's caches) cost more than the
            # encoding (measured, bench/publish.py)
            with paused_gc():
                if not self._one_batch(report, progress):
                    return report

    def _one_batch(self, report: PublishReport, progress: Progress | None) -> bool:
        """Read, send and record one batch (or the corrections after a rebuild); False when
        there was nothing to publish."""
        while True:
            with self.store.db.transaction(commit=False) as c:
                gen = feed.generation(c, self.store)
                if self.checkpoint.place == Place() and self.checkpoint.generation == 0:
                    # nothing published yet: the whole feed, as the projections are now
                    self.checkpoint = Checkpoint(Place(), gen, self.checkpoint.outbound)
                if gen != self.checkpoint.generation:
                    changes = None
                else:
                    changes = feed.read(c, self.store, self.checkpoint.place, self.settings.batch)
                    writes, written_upto = self._pending_writes(c)
                    if feed.generation(c, self.store) != gen:  # a rebuild swapped meanwhile
                        continue
            if changes is None:
                report.corrections += self._reconcile(gen)
                report.transactions += 1
                return True
            if not changes and not writes:
                return False
            place = changes[-1].place if changes else self.checkpoint.place
            self._send(changes, Checkpoint(place, gen, written_upto), writes)
            report.published += len(changes)
            report.writes += len(writes)
            report.transactions += 1
            report.position = place.position
            if progress is not None:
                progress(len(changes))
            return True

    def _pending_writes(self, c: Any) -> tuple[list[Message], int]:
        """The messages about writes since the checkpoint — those to the workers' targets
        that became pending, and the outcomes that settled — and the outbound projection's
        position they are read up to."""
        targets = self.settings.outbound_targets
        topic = self.settings.writes_topic
        if not targets and not topic:
            return [], self.checkpoint.outbound
        upto = self.store.db.tracked_in(c, "outbound")
        after = self.checkpoint.outbound
        messages: list[Message] = []
        for target, obj, cid, key, position in outbound.pending_after(c, targets, after, upto):
            value = {"target": target, "object": obj, "canonical_id": cid,
                     "idempotency_key": key, "position": position}  # fmt: skip
            messages.append(
                (self.settings.outbound_prefix + target, cid.encode(), _json(value), [])
            )
        if topic:
            for target, obj, cid, status, key, target_key, position in outbound.settled_after(
                c, after, upto
            ):
                value = {"target": target, "object": obj, "canonical_id": cid,
                         "status": status, "idempotency_key": key, "target_key": target_key,
                         "position": position}  # fmt: skip
                messages.append((topic, f"{target}/{obj}/{cid}".encode(), _json(value), []))
        return messages, upto

    def _send(
        self,
        changes: Iterable[FeedChange],
        checkpoint: Checkpoint,
        writes: Iterable[Message] = (),
    ) -> None:
        """One transaction: the changes, their states, the pending writes, the checkpoint."""
        entities = {ch.entity for ch in changes}
        self.admin.ensure(sorted(entities))
        self.admin.ensure_outbound(self.settings.outbound_targets)
        self.admin.ensure_writes_topic()
        producer = self.producer
        self._bodies.clear()
        producer.begin_transaction()
        try:
            for ch in changes:
                self._produce(ch)
            for topic, key, value, headers in writes:
                self._produce_retrying(topic, key, value, headers)
            producer.produce(
                self.settings.checkpoint_topic,
                key=self.settings.transactional_id.encode(),
                value=checkpoint.to_bytes(),
            )
            crashpoint("publish.before_commit")
            producer.commit_transaction(COMMIT_TIMEOUT)
            crashpoint("publish.after_commit")
        except KafkaException as e:
            self._failed(e)
            raise
        self.checkpoint = checkpoint

    def messages(self, ch: FeedChange) -> list[Message]:
        """The two messages of one change: to its change topic and its compacted state topic."""
        entity, cid = ch.entity, ch.canonical_id
        names = self._names.get(entity)
        if names is None:
            names = self._names[entity] = self._topic_names(entity)
        change_topic, state_topic, schema = names
        key = cid.encode()
        headers: list[tuple[str, str | bytes | None]] = [
            ("synchub.position", str(ch.position)),
            ("synchub.seq", str(ch.seq)),
            schema,
            ("synchub.mapping_version", str(ch.mapping_version)),
            ("synchub.system", ch.system),
            ("synchub.correlation_id", ch.correlation_id),
            ("synchub.op", ch.op),
        ]
        schemas = self.schemas
        # the state before is the one the last change of this entity in the batch left
        before = self._bodies.pop(cid, None) if ch.before is not None else None
        if before is None and ch.before is not None:
            before = schemas.state_body(entity, cid, ch.before)
        after = schemas.state_body(entity, cid, ch.after)
        if after is not None:
            self._bodies[cid] = after
        value = schemas.change_value(entity, ch.op, cid, ch.position, ch.changed, before, after)
        state = schemas.state_value(entity, after)
        return [(change_topic, key, value, headers), (state_topic, key, state, headers[:5])]

    def _topic_names(self, entity: str) -> tuple[str, str, tuple[str, bytes]]:
        """An entity's change topic, state topic, and schema header (its fingerprint's hex)."""
        topic = self.settings.topic_prefix + snake(entity)
        schema = fingerprint(self.schemas.change(entity)).hex().encode()
        return topic, topic + ".state", ("synchub.schema", schema)

    def _produce(self, ch: FeedChange) -> None:
        produce = self.producer.produce
        for topic, key, value, headers in self.messages(ch):
            try:
                produce(topic, value=value, key=key, headers=headers)
            except BufferError:  # the local queue is full: this one again once it drains
                self._produce_retrying(topic, key, value, headers)

    def _produce_retrying(
        self,
        topic: str,
        key: bytes,
        value: bytes | None,
        headers: list[tuple[str, str | bytes | None]] | None = None,
    ) -> None:
        while True:
            try:
                self.producer.produce(topic, value=value, key=key, headers=headers)
                return
            except BufferError:
                self.producer.poll(0.05)  # the local queue is full: let it drain

    def _failed(self, e: KafkaException) -> None:
        error: KafkaError = e.args[0]
        if error.txn_requires_abort():
            with contextlib.suppress(KafkaException):
                self.producer.abort_transaction(60)
        if error.fatal():
            raise SyncHubError(
                "the Kafka publisher was fenced: another process publishes this store with "
                f"transactional id {self.settings.transactional_id!r} ({error.str()}); run one "
                "publisher per store (the hub's `publish` lease does it for `synchub run`)"
            ) from e

    # -- after a rebuild ------------------------------------------------------------------------

    def _reconcile(self, gen: int) -> int:
        """Publish the differences between what the state topics hold and the state now."""
        self.admin.ensure(self.schemas.entities())
        found = reconcile.corrections(
            self.store, self.schemas, self.settings, self.consumer_options, gen
        )
        if found is None:
            return 0  # rebuilt again meanwhile: the caller starts over
        changes, place = found
        self._send(changes, Checkpoint(place, gen))
        log.info("after a rebuild: %d corrections published", len(changes))
        return len(changes)
