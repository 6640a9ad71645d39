"""The canonical projection's read queries (its table and fold: projections/canonical.py):
entities as the outbound planner, the reports, the as-of views and the previews read them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, NamedTuple

from hub.store.base import Cursor
from projections.canonical import CANONICAL

__all__ = [
    "Entity",
    "State",
    "changed_since",
    "entity",
    "entity_count",
    "fields_of",
    "ids_of",
    "live_entities",
    "live_states",
]

_SELECT_ENTITY = (
    "SELECT canonical_id, entity, natural_id, fields, deleted, position"
    f" FROM {CANONICAL.physical()}"
)


class Entity(NamedTuple):
    """A canonical entity as the planner reads it."""

    canonical_id: str
    entity: str
    natural_id: str
    fields: dict[str, Any]
    deleted: bool
    position: int


def _entity(r: Any) -> Entity:
    return Entity(r[0], r[1], r[2], json.loads(r[3]), bool(r[4]), r[5])


def changed_since(c: Cursor, since: int) -> list[Entity]:
    """The entities changed after position `since`, in the order of their last change."""
    c.execute(_SELECT_ENTITY + " WHERE position > ? ORDER BY position, canonical_id", (since,))
    return [_entity(r) for r in c.fetchall()]


def entity(c: Cursor, canonical_id: str) -> Entity | None:
    c.execute(_SELECT_ENTITY + " WHERE canonical_id=?", (canonical_id,))
    r = c.fetchone()
    return None if r is None else _entity(r)


def entity_count(c: Cursor) -> int:
    """How many entities there are (deleted ones included)."""
    c.execute(f"SELECT count(*) FROM {CANONICAL.physical()}")
    return int(c.fetchone()[0])


def ids_of(c: Cursor, entity: str) -> list[str]:
    """Every canonical id of `entity` there ever was (deleted ones included), sorted."""
    c.execute(f"SELECT canonical_id FROM {CANONICAL.physical()} WHERE entity=?", (entity,))
    return sorted(r[0] for r in c.fetchall())


def live_entities(c: Cursor, entity: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(canonical id, fields) of every live `entity`."""
    c.execute(
        f"SELECT canonical_id, fields FROM {CANONICAL.physical()} WHERE entity=? AND deleted=0",
        (entity,),
    )
    for cid, text in c.fetchall():
        yield cid, json.loads(text)


def fields_of(c: Cursor, canonical_id: str) -> dict[str, Any] | None:
    """The fields of a live entity; None when it does not exist or is deleted."""
    c.execute(
        f"SELECT fields, deleted FROM {CANONICAL.physical()} WHERE canonical_id=?",
        (canonical_id,),
    )
    r = c.fetchone()
    if r is None or r[1]:
        return None
    fields: dict[str, Any] = json.loads(r[0])
    return fields


State = tuple[str, str, dict[str, Any]]
"""(entity, natural id, fields) of a live canonical row."""


def live_states(c: Cursor, *, table: str) -> dict[str, State]:
    """Canonical id → (entity, natural id, fields) of every live entity of `table` (the live
    canonical table, or a scratch generation of it)."""
    c.execute(f"SELECT canonical_id, entity, natural_id, fields FROM {table} WHERE deleted=0")
    return {cid: (entity, nid, json.loads(fields)) for cid, entity, nid, fields in c.fetchall()}
