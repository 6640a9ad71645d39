"""What one Kafka transaction of the publisher carries (a batch of messages and the
checkpoint they reach), and the producer settings it is sent with."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from hub.kafka_config import KafkaSettings
from hub.publish.admin import KAFKA_LOG
from hub.publish.batch_encoder import Message
from hub.publish.feed import Place

__all__ = ["Batch", "Checkpoint", "Message", "producer_config"]


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
class Batch:
    """One transaction's worth, encoded: the messages (each change's two, then the writes'),
    the checkpoint it reaches, the entities it touches, and how many changes and writes."""

    messages: list[Message]
    checkpoint: Checkpoint
    entities: set[str]
    changes: int
    writes: int


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
