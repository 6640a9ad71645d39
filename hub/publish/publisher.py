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
import operator
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

from confluent_kafka import KafkaError, KafkaException, Producer

from hub.crashpoints import crashpoint
from hub.errors import StoreError, SyncHubError
from hub.kafka_config import KafkaSettings
from hub.perf import paused_gc
from hub.publish import admin, feed, reconcile
from hub.publish.batch_encoder import BatchEncoder, EntityOut, form_id
from hub.publish.feed import FeedChange, Place
from hub.publish.registry import SchemaRegistry
from hub.publish.topics import TopicSchemas, fingerprint, snake
from hub.publish.transaction import Batch, Checkpoint, Message, producer_config
from hub.store.base import EventStore
from projections import outbound

__all__ = ["Checkpoint", "Message", "PublishReport", "Publisher", "producer_config"]

log = logging.getLogger("synchub.publish")

Progress = Callable[[int], None]

REACH_TIMEOUT = 5.0
"""Seconds a pass waits for the brokers to answer before it says they cannot be reached."""
CHUNK = 500
"""Changes encoded at a time (a transaction holds `kafka.batch`, read with one query): their
rows and messages stay in the CPU's caches while the loop makes them — 5,000 at once took
6-7 µs a change, 500 at a time 4.4-4.8 (reading included; /tmp script over a 100k store)."""
_ENTITY = operator.itemgetter(3)
"""A feed row's entity (both row kinds have it fourth)."""
COMMIT_TIMEOUT = 60.0
"""Seconds a transaction's start or commit may take (then it is aborted and tried again)."""


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


class Rebuilt(NamedTuple):
    """What `_next_batch` says when the projections were rebuilt since the checkpoint."""

    generation: int


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
        self.encoder = BatchEncoder(self._entity_out, schemas.changed_arrays)

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
        """Everything the feed holds after the checkpoint, in transactions of `batch`: each
        batch read and encoded, then sent and committed with its checkpoint.

        Not pipelined: a sender thread committing one transaction while this one encoded the
        next was 25-30 % slower (20-23k vs 27-33k changes/s, measured A/B on one store): the
        two threads contend for the interpreter's lock more than the commit's wait saves."""
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
                batch = self._next_batch(self.checkpoint)
                if batch is None:
                    return report
                if isinstance(batch, Rebuilt):
                    corrections, transactions = self._reconcile(batch.generation)
                    report.corrections += corrections
                    report.transactions += transactions
                    continue
                self._send_batch(batch)
            report.published += batch.changes
            report.writes += batch.writes
            report.transactions += 1
            report.position = batch.checkpoint.place.position
            if progress is not None:
                progress(batch.changes)

    def _next_batch(self, reading: Checkpoint) -> Batch | Rebuilt | None:
        """The next batch after `reading`, encoded; Rebuilt when the projections were rebuilt
        since (the generation moved: reconcile first); None when there is nothing new."""
        while True:
            with self.store.db.transaction(commit=False) as c:
                gen = feed.generation(c, self.store)
                if reading.place == Place() and reading.generation == 0:
                    # nothing published yet: the whole feed, as the projections are now
                    reading = Checkpoint(Place(), gen, reading.outbound)
                if gen != reading.generation:
                    return Rebuilt(gen)
                messages, place, entities, changes = self._changes_after(c, reading.place)
                writes, written_upto = self._pending_writes(c, reading.outbound)
                if feed.generation(c, self.store) != gen:  # a rebuild swapped meanwhile
                    continue
            if not changes and not writes:
                return None
            messages.extend(writes)
            checkpoint = Checkpoint(place, gen, written_upto)
            return Batch(messages, checkpoint, entities, changes, len(writes))

    def _changes_after(self, c: Any, place: Place) -> tuple[list[Message], Place, set[str], int]:
        """The messages of up to `batch` changes after `place`, the place they reach, their
        entities and how many: read with one query, made into rows and encoded CHUNK changes
        at a time, each from the form the fold made of it (else folded and encoded here)."""
        messages: list[Message] = []
        entities: set[str] = set()
        count = 0
        until = feed.upto(c, self.store)
        stream = feed.forms_streamed(c, place, self.settings.batch, until, CHUNK)
        with contextlib.closing(stream):  # its cursor closed whatever happens
            lists: Iterator[list[Any]] = stream
            while (rows := next(lists, None)) is not None:
                part = self.encoder.published(rows)
                if part is None:  # a row without its form: the rest read first, then `c`
                    lists = iter(list(lists))  # is free for the fallback's queries
                    rows, part = self._folded(c, rows, place, until)
                messages += part
                entities.update(map(_ENTITY, rows))
                place = Place(rows[-1][0], rows[-1][1])
                count += len(rows)
        return messages, place, entities, count

    def _folded(
        self, c: Any, rows: list[Any], place: Place, until: int
    ) -> tuple[list[Any], list[Message]]:
        """The changes of `rows` (after `place`) read again with their fields, and their
        messages folded and encoded."""
        last = tuple(rows[-1][:2])
        rows = feed.rows_after(c, self.store, place, len(rows), until)
        if not rows or tuple(rows[-1][:2]) != last:  # the same rows, or nothing sent
            raise StoreError(
                f"the change feed changed while the publisher read it after {place}: nothing "
                "was sent; the next pass reads it again"
            )
        return rows, self.encoder.rows(rows, feed.states_before(c, rows, place))

    def _pending_writes(self, c: Any, after: int) -> tuple[list[Message], int]:
        """The messages about writes since the checkpoint — those to the workers' targets
        that became pending, and the outcomes that settled — and the outbound projection's
        position they are read up to."""
        targets = self.settings.outbound_targets
        topic = self.settings.writes_topic
        if not targets and not topic:
            return [], after
        upto = self.store.db.tracked_in(c, "outbound")
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
        changes: list[FeedChange],
        checkpoint: Checkpoint,
        writes: list[Message] | None = None,
    ) -> None:
        """One transaction: the changes, their states, the pending writes, the checkpoint."""
        self._send_batch(self._encode(changes, checkpoint, writes or []))

    def _encode(
        self, changes: list[FeedChange], checkpoint: Checkpoint, writes: list[Message]
    ) -> Batch:
        """A transaction's messages: each change's two, then the writes'."""
        messages = self.encode_changes(changes)
        messages.extend(writes)
        entities = {ch.entity for ch in changes}
        return Batch(messages, checkpoint, entities, len(changes), len(writes))

    def _send_batch(self, batch: Batch) -> None:
        """Produce a batch's messages and its checkpoint in one transaction, and commit it."""
        self.admin.ensure(sorted(batch.entities))
        self.admin.ensure_outbound(self.settings.outbound_targets)
        self.admin.ensure_writes_topic()
        producer = self.producer
        produce = producer.produce
        producer.begin_transaction()
        try:
            for topic, key, value, headers in batch.messages:
                try:
                    produce(topic, value=value, key=key, headers=headers)
                except BufferError:  # the local queue is full: this one again once it drains
                    self._produce_retrying(topic, key, value, headers)
            self._produce_retrying(
                self.settings.checkpoint_topic,
                self.settings.transactional_id.encode(),
                batch.checkpoint.to_bytes(),
            )
            crashpoint("publish.before_commit")
            producer.commit_transaction(COMMIT_TIMEOUT)
            crashpoint("publish.after_commit")
        except KafkaException as e:
            self._failed(e)
            raise
        except BaseException:  # nothing of an unfinished transaction may stay open
            with contextlib.suppress(KafkaException):
                producer.abort_transaction(COMMIT_TIMEOUT)
            raise
        self.checkpoint = batch.checkpoint

    def encode_changes(self, changes: list[FeedChange]) -> list[Message]:
        """The two messages of each change, in order: to its change topic and to its
        compacted state topic (hub.publish.batch_encoder)."""
        return self.encoder.changes(changes)

    def _entity_out(self, entity: str) -> EntityOut:
        """An entity's topics, schema header (its change schema's fingerprint in hex), value
        prefixes (single-object header or wire-format id) and state encoders."""
        topic = self.settings.topic_prefix + snake(entity)
        schemas = self.schemas
        return EntityOut(
            topic,
            topic + ".state",
            ("synchub.schema", fingerprint(schemas.change(entity)).hex().encode()),
            form_id(schemas.change(entity)),
            schemas.change_prefix(entity),
            schemas.state_prefix(entity),
            schemas.stored_encoder(entity),
            lambda cid, fields: schemas.slow_state_body(entity, cid, fields),
        )

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

    def _reconcile(self, gen: int) -> tuple[int, int]:
        """Publish the differences between what the state topics hold and the state now, in
        transactions of `batch` corrections. Only the last one moves the checkpoint to the new
        generation: after a crash between them the next pass reconciles again, and what was
        committed already matches then (each difference is published once). Returns how many
        corrections and transactions."""
        self.admin.ensure(self.schemas.entities())
        found = reconcile.corrections(
            self.store, self.schemas, self.settings, self.consumer_options, gen
        )
        if found is None:
            return 0, 0  # rebuilt again meanwhile: the caller starts over
        changes, place = found
        size = max(1, self.settings.batch)
        last = max(0, len(changes) - 1) // size * size
        for start in range(0, last, size):
            self._send(changes[start : start + size], self.checkpoint)
            crashpoint("publish.reconcile_part")
        # the pending writes' place is a store position: a rebuild does not move it
        self._send(changes[last:], Checkpoint(place, gen, self.checkpoint.outbound))
        log.info("after a rebuild: %d corrections published", len(changes))
        return len(changes), last // size + 1
