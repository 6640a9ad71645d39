"""The canonical change feed: the audit projection's changes in store order, each with the
entity's whole state before and after it. What the publisher sends to Kafka and what
`synchub subscribe` reads from an embedded store.

A reader keeps its place as (position, seq) of the last change it took. A rebuild of the
projections may rewrite changes before that place (a mapping fix): `generation` tells, and
the publisher then reconciles what it published with the state now (publisher.py).
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import Any, NamedTuple

import orjson

from hub.store.base import Cursor, EventStore
from projections import audit
from projections.runner import REBUILT

__all__ = [
    "OPS",
    "FeedChange",
    "Place",
    "correlation_id",
    "folded",
    "forms_streamed",
    "generation",
    "read",
    "rows_after",
    "states_before",
    "upto",
]

OPS = ("create", "update", "delete", "restore")
"""What a change does to its entity (the audit's `op`, the change record's enum)."""


class Place(NamedTuple):
    """Where a reader of the feed is: after the change (position, seq)."""

    position: int = 0
    seq: int = 0


class FeedChange(NamedTuple):
    """One canonical change with the entity's state around it and its lineage."""

    position: int
    seq: int
    entity: str
    canonical_id: str
    op: str
    changed: list[str]
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    system: str
    object: str
    source_key: str
    mapping_version: int

    @property
    def place(self) -> Place:
        return Place(self.position, self.seq)

    @property
    def correlation_id(self) -> str:
        """The source change that caused it: system/object/key@position of its event."""
        return correlation_id(self.system, self.object, self.source_key, self.position)


def upto(c: Cursor, store: EventStore) -> int:
    """The position the audit projection is complete to (changes after it are not final)."""
    return store.db.tracked_in(c, "audit")


def generation(c: Cursor, store: EventStore) -> int:
    """When the projections were last rebuilt (µs; 0: never)."""
    return store.db.tracked_in(c, REBUILT)


def read(c: Cursor, store: EventStore, after: Place, limit: int) -> list[FeedChange]:
    """Up to `limit` changes after `after`, those the audit holds completely, in order."""
    rows = rows_after(c, store, after, limit)
    return list(map(FeedChange._make, folded(rows, states_before(c, rows, after))))


def rows_after(
    c: Cursor, store: EventStore, after: Place, limit: int, until: int | None = None
) -> list[Any]:
    """The rows (audit.CHANGE_COLUMNS) of up to `limit` changes after `after`, those the audit
    holds completely (up to position `until`: `upto`, read now when not given), in order."""
    end = upto(c, store) if until is None else until
    rows: list[Any] = audit.changes_after(c, after.position, after.seq, end, limit)
    return rows


def forms_streamed(
    c: Cursor, after: Place, limit: int, until: int, size: int
) -> Generator[list[Any], None, None]:
    """The rows of audit.FORM_COLUMNS of up to `limit` changes after `after`, up to position
    `until`, in order: from one query (one round trip to a server), in lists of up to `size`
    (`c` may run other queries between them)."""
    return audit.changes_streamed(c, after.position, after.seq, until, limit, size)


def states_before(c: Cursor, rows: list[Any], after: Place) -> dict[str, dict[str, Any]]:
    """The state of each entity of `rows` before the first of them (the rows after `after`),
    of those that had one (for `folded`)."""
    first: dict[str, str] = {}
    for r in rows:
        first.setdefault(r[2], r[4])
    # an entity whose first change here is a create or a restore had no state before it
    known = [cid for cid, op in first.items() if op in _HAD_STATE]
    return audit.states_of(c, known, after.position, seq=after.seq) if known else {}


_HAD_STATE = frozenset(("update", "delete"))


def folded(rows: list[Any], states: dict[str, dict[str, Any]]) -> Iterator[tuple[Any, ...]]:
    """The rows (audit.CHANGE_COLUMNS) with each entity's state before and after: tuples of
    FeedChange's fields, in order; `states` (each entity's state before the first row) is
    updated as they are folded."""
    loads = orjson.loads
    for position, seq, cid, entity, op, new, system, obj, key, version, *_ in rows:
        before = states.get(cid)
        if op == "delete":
            after = None
            changed: list[str] = []
            states.pop(cid, None)
        else:
            # written by hub.values.dumps: sorted keys, never NaN (orjson reads it)
            fields = loads(new) if new else {}
            after = {**before, **fields} if before else fields
            changed = sorted(fields)
            states[cid] = after
        yield position, seq, entity, cid, op, changed, before, after, system, obj, key, version


def correlation_id(system: str, obj: str, key: str, position: int) -> str:
    """The source change that caused a change: system/object/key@position of its event."""
    return f"{system}/{obj}/{key}@{position}"
