"""After a rebuild of the projections: what the compacted state topics hold compared with the
state now, each difference an ordinary change (create, update, or delete with a tombstone) the
publisher sends in one transaction with the new checkpoint, so consumers converge without
re-reading history.

It holds every published state while it compares (≈ 0.2 KB an entity: a key and an Avro
body), and the corrections it finds.
"""

from __future__ import annotations

from typing import Any

from hub.kafka_config import KafkaSettings
from hub.publish import admin, feed
from hub.publish.feed import FeedChange, Place
from hub.publish.topics import TopicSchemas, snake
from hub.store.base import EventStore
from hub.values import to_json
from projections import audit

__all__ = ["corrections"]

Fields = dict[str, Any]


def corrections(
    store: EventStore,
    schemas: TopicSchemas,
    settings: KafkaSettings,
    consumer_options: dict[str, Any],
    generation: int,
) -> tuple[list[FeedChange], Place] | None:
    """The corrections and the feed place they bring the topics to; None when the projections
    were rebuilt again meanwhile (start over)."""
    entities = schemas.entities()
    topics = [settings.topic_prefix + snake(e) + ".state" for e in entities]
    published: dict[bytes, bytes | None] = {}
    for key, value in admin.read_all(settings, topics, consumer_options):
        published[key] = value
    found: list[tuple[str, str, Fields | None, Fields | None]] = []
    with store.db.transaction(commit=False) as c:
        upto = feed.upto(c, store)
        place = Place(*audit.last_change(c, upto))
        live: set[bytes] = set()
        for entity in entities:
            for cid, fields in audit.states_at(c, entity, upto):
                key = cid.encode()
                live.add(key)
                old = published.get(key)
                if old != schemas.encode_state(entity, cid, fields):
                    found.append((entity, cid, _fields(schemas, old), fields))
        for key, old in published.items():
            if old is not None and key not in live:
                cid = key.decode()
                found.append((cid.split("/", 1)[0], cid, _fields(schemas, old), None))
        if feed.generation(c, store) != generation:
            return None
    changes = [
        FeedChange(
            place[0],
            place[1],
            entity,
            cid,
            _op(before, after),
            _changed(before, after),
            before,
            after,
            "synchub",
            "rebuild",
            cid,
            0,
        )
        for entity, cid, before, after in found
    ]
    return changes, place


def _fields(schemas: TopicSchemas, value: bytes | None) -> Fields | None:
    """A published state back to the stored JSON form (to compare and to show)."""
    if value is None:
        return None
    return {k: to_json(v) for k, v in schemas.decode(value).items() if v is not None}


def _op(before: Fields | None, after: Fields | None) -> str:
    if before is None:
        return "create"
    return "delete" if after is None else "update"


def _changed(before: Fields | None, after: Fields | None) -> list[str]:
    if after is None:
        return []
    return sorted(k for k, v in after.items() if (before or {}).get(k) != v)
