"""`synchub worker outbound --target NAME`: a target's writes done by a Kafka consumer group.

`synchub run` plans the writes (DeltaPlanned facts in the store) and, for the targets in
`kafka.outbound_targets`, publishes each write that becomes pending to
`<outbound_prefix><target>`, keyed by canonical id, in the same transactions as the canonical
changes (publisher.py). Workers consume that topic as one consumer group
(named like the topic, cooperative-sticky assignment, static membership by `--member`).

For each batch of messages a worker:
1. brings the projections up to date (so an outcome another worker recorded is seen);
2. keeps, per target record, the write in flight now (a message about an older write of the
   same record is stale: that write was settled or replaced);
3. sends them to the target in one batch, each with its idempotency key, and records every
   outcome in the store (WriteAttempted); a retryable one is tried again, after its backoff,
   until it is applied or rejected (the batch's partitions wait: order per record holds);
4. only then stores the messages' offsets (committed by the consumer, and on a revoke).

A worker killed between 3 and 4 leaves messages another worker reads again: step 1 shows the
recorded outcome and step 2 skips it; killed between the target's answer and the record, the
write is sent again with the same idempotency key, which the target's connector honours.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from hub.errors import SyncHubError
from hub.kafka_config import KafkaSettings
from hub.outbound.executor import Executor, ExecutorReport
from hub.publish import admin
from hub.publish.admin import KAFKA_LOG
from hub.publish.batch_encoder import PublishForm
from hub.spi import Sink
from hub.store.base import EventStore
from projections import Projector
from projections import outbound as rows

__all__ = ["OutboundWorker", "WorkerReport"]

_TRANSIENT = {KafkaError._PARTITION_EOF, KafkaError.UNKNOWN_TOPIC_OR_PART}
"""Errors a consumer reports and gets over by itself (a topic made meanwhile)."""

log = logging.getLogger("synchub.worker")


@dataclass
class WorkerReport:
    """What a worker did so far."""

    messages: int = 0
    stale: int = 0
    """Messages about a write already settled or replaced (nothing sent)."""
    attempts: ExecutorReport = field(default_factory=ExecutorReport)
    assigned: list[int] = field(default_factory=list)


class OutboundWorker:
    """One member of a target's outbound consumer group."""

    def __init__(
        self,
        store: EventStore,
        kafka: KafkaSettings,
        target: str,
        sink: Sink,
        executor: Executor,
        *,
        member: str | None = None,
        options: dict[str, Any] | None = None,
        session_timeout_ms: int = 10_000,
    ) -> None:
        self.store = store
        self.target = target
        self.topic = kafka.outbound_prefix + target
        self.executor = executor
        self.sink = sink
        self.projector = Projector(store, publish_form=PublishForm())  # as `synchub run`
        self.report = WorkerReport()
        self.member = member or f"{socket.gethostname()}-{target}"
        self.topics = admin.Topics(kafka, admin.connection_options(options))
        self.consumer = Consumer(
            {
                "bootstrap.servers": kafka.bootstrap_servers,
                "group.id": self.topic,  # the group is named like its topic
                "group.instance.id": self.member,  # static membership
                "partition.assignment.strategy": "cooperative-sticky",
                "session.timeout.ms": session_timeout_ms,
                "enable.auto.commit": True,
                "enable.auto.offset.store": False,  # stored once the outcome is recorded
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed",
                "logger": KAFKA_LOG,
                **(options or {}),
            }
        )

    def run(
        self, stop: threading.Event, on_batch: Callable[[WorkerReport], None] | None = None
    ) -> None:
        """Consume until `stop` is set; the batch in hand is always finished first."""
        self.topics.ensure_outbound([self.target])  # whoever comes first makes it
        self.consumer.subscribe([self.topic], on_assign=self._assigned, on_revoke=self._revoked)
        try:
            while not stop.is_set():
                messages = self.consumer.consume(500, 1.0)
                batch = []
                for msg in messages:
                    error = msg.error()
                    if error is not None:
                        if error.code() in _TRANSIENT:
                            log.info("%s: %s", self.topic, error.str())
                            continue
                        raise SyncHubError(f"reading {self.topic}: {error.str()}")
                    batch.append(msg)
                if batch:
                    self._handle(batch)
                    if on_batch is not None:
                        on_batch(self.report)
        finally:
            self.consumer.close()  # leaves the group; stored offsets are committed

    def _assigned(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        self.report.assigned = sorted({*self.report.assigned, *(p.partition for p in partitions)})
        log.info("%s: assigned %s", self.member, [p.partition for p in partitions])

    def _revoked(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        gone = {p.partition for p in partitions}
        self.report.assigned = [p for p in self.report.assigned if p not in gone]
        try:
            consumer.commit(asynchronous=False)  # what this member finished, before it goes
        except KafkaException as e:
            if e.args[0].code() != KafkaError._NO_OFFSET:
                log.warning("committing on revoke: %s", e.args[0].str())

    def _handle(self, batch: list[Any]) -> None:
        """Steps 1 to 4 of the module's doc for one batch."""
        self.projector.catch_up()
        wanted: dict[tuple[str, str], str] = {}
        for msg in batch:
            d = json.loads(msg.value())
            wanted[(d["object"], d["canonical_id"])] = d["idempotency_key"]
        self.report.messages += len(batch)
        todo = []
        with self.store.db.transaction(commit=False) as c:
            for (obj, cid), key in wanted.items():
                row = rows.in_flight_row(c, self.target, obj, cid)
                if row is None or row.idempotency_key != key:
                    self.report.stale += 1
                    continue
                todo.append(row)
        while todo:
            statuses = self.executor.attempt(self.target, todo, self.report.attempts)
            retry = [r for r, s in zip(todo, statuses, strict=True) if s == "retryable"]
            self.projector.catch_up()
            if not retry:
                break
            with self.store.db.transaction(commit=False) as c:
                todo = [
                    row
                    for r in retry
                    if (row := rows.in_flight_row(c, self.target, r.object, r.canonical_id))
                    is not None
                    and row.idempotency_key == r.idempotency_key
                ]
            if todo:
                time.sleep(max(0.0, min(self.executor.due_at(r) for r in todo) - time.time()))
        last: dict[int, int] = {}
        for msg in batch:
            last[msg.partition()] = max(last.get(msg.partition(), -1), msg.offset())
        self.consumer.store_offsets(
            offsets=[TopicPartition(self.topic, p, o + 1) for p, o in last.items()]
        )
