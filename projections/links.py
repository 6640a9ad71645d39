"""The links projection: the identity map across systems.

One row per (system, object, key) naming the canonical entity that record is. Source records get
a link when they map to an entity (the canonical projection puts it); target records when a
write to them is applied (the outbound projection puts it), and lose it when a delete is.
It reacts to no event type of its own. Its tables are tracked with the canonical projection's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from hub.mapping.runtime import StepFailure
from hub.store.base import Cursor
from projections.tables import Context, Table

__all__ = [
    "LINKS",
    "TABLES",
    "Link",
    "RecordKey",
    "first_key",
    "linked",
    "linked_elsewhere",
    "links_of",
    "object_key",
    "sources",
    "targeted",
]

LINKS = Table(
    "links",
    (
        "system TEXT NOT NULL",
        "object TEXT NOT NULL",
        "key TEXT NOT NULL",
        "canonical_id TEXT NOT NULL",
        "role TEXT NOT NULL",  # source | target
        "position INTEGER NOT NULL",
    ),
    pk=("system", "object", "key"),
    indexes=(("canonical_id", "system"),),
)

TABLES = (LINKS,)
_LIVE = LINKS.physical()

SOURCE = "source"
TARGET = "target"


def linked_elsewhere(
    entity: str, system: str, obj: str, key: str, canonical_id: str
) -> StepFailure:
    """What a `link ENTITY SYSTEM OBJECT` step fails with when the record is linked, but to an
    entity of another kind: a plain mapping error (capturing more changes nothing), not a
    missing link to wait for."""
    return StepFailure(
        f"{system}/{obj}/{key} is linked to {canonical_id}, not to a {entity}: link the object "
        f"whose records are {entity} entities, or fix the rule that maps {system}/{obj}"
    )


class RecordKey(NamedTuple):
    """A record of some system: (system, object, key)."""

    system: str
    object: str
    key: str


class Link(NamedTuple):
    """One identity link of an entity, as `state` shows it."""

    system: str
    object: str
    key: str
    role: str


# -- read queries ------------------------------------------------------------------------------


def linked(c: Cursor, system: str, obj: str, key: str) -> str | None:
    """The canonical id record system/obj/key is linked to, of whatever entity."""
    c.execute(
        f"SELECT canonical_id FROM {_LIVE} WHERE system=? AND object=? AND key=?",
        (system, obj, str(key)),
    )
    r = c.fetchone()
    return None if r is None else str(r[0])


def object_key(
    c: Cursor, canonical_id: str, system: str, obj: str, *, table: str = _LIVE
) -> str | None:
    """The key of the record of system/obj linked to `canonical_id` (in any role), if any."""
    c.execute(
        f"SELECT key FROM {table} WHERE canonical_id=? AND system=? AND object=?"
        " ORDER BY key LIMIT 1",
        (canonical_id, system, obj),
    )
    r = c.fetchone()
    return None if r is None else str(r[0])


def first_key(c: Cursor, canonical_id: str, system: str, *, table: str = _LIVE) -> str | None:
    """The key `system` uses for `canonical_id`: its first linked record by object and key."""
    c.execute(
        f"SELECT key FROM {table} WHERE canonical_id=? AND system=? ORDER BY object, key LIMIT 1",
        (canonical_id, system),
    )
    r = c.fetchone()
    return None if r is None else str(r[0])


def sources(c: Cursor, canonical_id: str, *, table: str = _LIVE) -> list[RecordKey]:
    """The source records linked to `canonical_id`, by system, object and key."""
    c.execute(
        f"SELECT system, object, key FROM {table}"
        " WHERE canonical_id=? AND role=? ORDER BY system, object, key",
        (canonical_id, SOURCE),
    )
    return [RecordKey(r[0], r[1], r[2]) for r in c.fetchall()]


def links_of(c: Cursor, canonical_id: str, upto: int | None = None) -> list[Link]:
    """The identity links of `canonical_id` made at or before position `upto` (None: all), by
    system, object and key (a link is kept as last made: one re-pointed later shows from then
    on)."""
    c.execute(
        f"SELECT system, object, key, role FROM {_LIVE} WHERE canonical_id=? AND position <= ?"
        " ORDER BY system, object, key",
        (canonical_id, upto if upto is not None else 2**63 - 1),
    )
    return [Link(r[0], r[1], r[2], r[3]) for r in c.fetchall()]


def targeted(c: Cursor, system: str, obj: str, upto: int | None = None) -> set[str]:
    """The canonical ids written to a record of `system`/`obj` (a target link) made at or
    before position `upto` (None: all), that still have it."""
    c.execute(
        f"SELECT canonical_id FROM {_LIVE} WHERE system=? AND object=? AND role=?"
        " AND position <= ?",
        (system, obj, TARGET, upto if upto is not None else 2**63 - 1),
    )
    return {r[0] for r in c.fetchall()}


# -- the projection in a fold ------------------------------------------------------------------


class Links:
    """Keeps the links table of one fold; `on_link(system, object, key)` is told of every
    link put (records waiting for it can be mapped now)."""

    def __init__(
        self,
        ctx: Context,
        on_link: Callable[[str, str, str], None],
        on_target: Callable[[str, str, str, bool], None] | None = None,
    ) -> None:
        self.ctx = ctx
        self.rows = ctx.cache(LINKS)
        self.table = ctx.table(LINKS)
        self.on_link = on_link
        self.on_target = on_target
        """Told (system, object, canonical id, linked) of every target link put or dropped."""
        self._target_keys: set[tuple[str, str]] = set()
        """(system, canonical id) of links put since the last flush of the cache."""

    def get(self, system: str, obj: str, key: str) -> dict[str, Any] | None:
        assert self.ctx.c is not None
        return self.rows.get(self.ctx.c, (system, obj, key))

    def link(self, system: str, obj: str, key: str, cid: str, role: str) -> None:
        """Link record system/obj/key to `cid` as a `role` (source | target) record."""
        assert self.ctx.c is not None
        old = self.rows.get(self.ctx.c, (system, obj, key))
        if old is not None and old["canonical_id"] != cid:
            # the entity it was linked to has one key fewer: target_key must read it afresh
            self._target_keys.add((system, old["canonical_id"]))
            if old["role"] == TARGET and self.on_target is not None:
                self.on_target(system, obj, old["canonical_id"], False)
        self.rows.put(
            (system, obj, key),
            {
                "system": system,
                "object": obj,
                "key": key,
                "canonical_id": cid,
                "role": role,
                "position": self.ctx.position,
            },
        )
        self._target_keys.add((system, cid))
        if role == TARGET and self.on_target is not None:
            self.on_target(system, obj, cid, True)
        self.on_link(system, obj, key)

    def unlink(self, system: str, obj: str, key: str, cid: str) -> None:
        """Drop the target link system/obj/key → cid (its record was deleted), so that a later
        write to that target creates a record instead of updating the deleted one."""
        c = self.ctx.c
        assert c is not None
        link = self.rows.get(c, (system, obj, key))
        if link is not None and link["canonical_id"] == cid and link["role"] == TARGET:
            self.rows.put((system, obj, key), None)
            if self.on_target is not None:
                self.on_target(system, obj, cid, False)
            self.flush(c)  # target_key reads the table

    def target_key(self, system: str, canonical_id: str) -> str | None:
        """See first_key; the same answer whatever the page boundaries."""
        c = self.ctx.c
        assert c is not None
        if (system, canonical_id) in self._target_keys:
            # answer from the table, whatever the page boundaries (a rebuild folds in other
            # pages than catch-up): the first key by object and key, not the first linked
            self.flush(c)
        return first_key(c, canonical_id, system, table=self.table)

    def object_key(self, system: str, obj: str, canonical_id: str) -> str | None:
        """See object_key (the module's), in this fold's table."""
        c = self.ctx.c
        assert c is not None
        self.rows.flush(c)
        return object_key(c, canonical_id, system, obj, table=self.table)

    def sources_of(self, canonical_id: str) -> list[RecordKey]:
        """See sources."""
        c = self.ctx.c
        assert c is not None
        self.rows.flush(c)
        return sources(c, canonical_id, table=self.table)

    def flush(self, c: Cursor) -> None:
        self.rows.flush(c)
        self._target_keys.clear()

    def discard(self) -> None:
        self.rows.discard()
        self._target_keys.clear()
