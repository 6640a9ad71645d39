"""The backlog projection: when each approved time entry waited to be posted, as intervals of
positions, so "which approved time was not posted after position P?" is an indexed query
however long the log (the unposted-time indicator, hub.indicators), not a replay.

An entry *waits* while it is approved (canonical `approved` is true) and not posted: no write
applied at a posting target (a TimeEntry target rule of another system than the one that owns
its time, its `minutes`: the ERP). An open wait is a row of `backlog_open` (canonical id,
since); a wait that ended is written to `backlog` once per BUCKET of positions it overlaps
(bucket, canonical id, since, until), so the waits that contain P are those of bucket P // BUCKET
with since <= P < until: one index range however long the log and however long the waits.
Only entries that wait are held in memory, not every entry.

It reacts to no event type of its own: the canonical projection tells it of every entity
change, the links of every target link put or dropped; `bind` gives it the outbound rows
(is an entry posted?) and the canonical rows (is it approved?) for the rarer changes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hub.mapping import Mapping
from hub.store.base import Cursor
from hub.store.rows import MultiRowInsert
from projections.tables import Context, Table

__all__ = [
    "BACKLOG",
    "BACKLOG_OPEN",
    "BUCKET",
    "TABLES",
    "Backlog",
    "posting_targets",
    "waiting_at",
]

ENTITY = "TimeEntry"
BUCKET = 16384
"""Positions per bucket: a query reads the ended waits that overlap one bucket."""

BACKLOG = Table(
    "backlog",
    (
        "bucket INTEGER NOT NULL",
        "canonical_id TEXT NOT NULL",
        "since INTEGER NOT NULL",
        "until INTEGER NOT NULL",
    ),
    pk=("bucket", "canonical_id", "since"),
)
BACKLOG_OPEN = Table(
    "backlog_open",
    ("canonical_id TEXT NOT NULL", "since INTEGER NOT NULL"),
    pk=("canonical_id",),
)
TABLES = (BACKLOG, BACKLOG_OPEN)
_LIVE = BACKLOG.physical()
_OPEN = BACKLOG_OPEN.physical()


def posting_targets(mapping: Mapping | None) -> frozenset[tuple[str, str]]:
    """(system, object) of the TimeEntry target rules of another system than the one that owns
    the time (its `minutes`): where approved time is posted."""
    if mapping is None:
        return frozenset()
    owner = mapping.owner(ENTITY, "minutes")
    return frozenset((r.system, r.object) for r in mapping.outbound(ENTITY) if r.system != owner)


# -- read queries ------------------------------------------------------------------------------


def waiting_at(c: Cursor, position: int | None) -> list[str]:
    """The canonical ids of the entries waiting to be posted after `position` (None: now)."""
    if position is None:
        c.execute(f"SELECT canonical_id FROM {_OPEN}")
        return sorted(r[0] for r in c.fetchall())
    c.execute(
        f"SELECT canonical_id FROM {_LIVE} WHERE bucket = ? AND since <= ? AND until > ?",
        (position // BUCKET, position, position),
    )
    found = {r[0] for r in c.fetchall()}
    c.execute(f"SELECT canonical_id FROM {_OPEN} WHERE since <= ?", (position,))
    found.update(r[0] for r in c.fetchall())
    return sorted(found)


# -- the projection in a fold ------------------------------------------------------------------


class Backlog:
    """Keeps the backlog tables of one fold: told of entity changes (`changed`) and target
    links (`targeted`); `activate` with each mapping version, `bind` once the fold has its
    outbound and canonical projections."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.open = ctx.cache(BACKLOG_OPEN)
        self.ended: list[tuple[int, str, int, int]] = []
        head, tail = ctx.dialect.upsert_statement(
            ctx.table(BACKLOG), BACKLOG.column_names, BACKLOG.pk
        )
        self._insert = MultiRowInsert(head, 4, max_rows=8192, tail=tail)
        self.targets: frozenset[tuple[str, str]] = frozenset()
        self._posted: Callable[[str, str, str], bool] = lambda s, o, cid: False
        self._approved: Callable[[str], bool] = lambda cid: False

    def activate(self, mapping: Mapping | None) -> None:
        self.targets = posting_targets(mapping)

    def bind(
        self, posted: Callable[[str, str, str], bool], approved: Callable[[str], bool]
    ) -> None:
        """`posted(system, object, cid)`: a write to that target is applied and not deleted;
        `approved(cid)`: the entity is approved now."""
        self._posted, self._approved = posted, approved

    def changed(
        self, cid: str, entity: str, old: dict[str, Any] | None, changed: dict[str, Any] | None
    ) -> None:
        """Entity `cid` changed from `old` (its fields before; empty for a create) by
        `changed` (None, None: it was deleted)."""
        if entity != ENTITY or not self.targets:
            return
        before = old is not None and old.get("approved") is True
        if changed is None:
            now = False
        elif "approved" in changed:
            now = changed["approved"] is True
        else:
            return
        if now == before:
            return
        if not now:
            self._end(cid)
        elif not old or not any(self._posted(s, o, cid) for s, o in self.targets):
            self._begin(cid)

    def targeted(self, system: str, obj: str, cid: str, linked: bool) -> None:
        """Target record system/obj of `cid` was linked (written) or unlinked (deleted)."""
        if (system, obj) not in self.targets or not cid.startswith(ENTITY + "/"):
            return
        if linked:
            self._end(cid)
        elif self._approved(cid):
            self._begin(cid)

    def _begin(self, cid: str) -> None:
        assert self.ctx.c is not None
        if self.open.get(self.ctx.c, cid) is None:
            self.open.put(cid, {"canonical_id": cid, "since": self.ctx.position})

    def _end(self, cid: str) -> None:
        assert self.ctx.c is not None
        row = self.open.get(self.ctx.c, cid)
        if row is None:
            return
        self.open.put(cid, None)
        since, until = row["since"], self.ctx.position
        if since < until:  # a wait that began and ended at one position never was
            for bucket in range(since // BUCKET, until // BUCKET + 1):
                self.ended.append((bucket, cid, since, until))

    def flush(self, c: Cursor) -> None:
        if self.ended:
            self._insert.run(c, self.ended)
            self.ended.clear()
        self.open.flush(c)

    def discard(self) -> None:
        self.ended.clear()
        self.open.discard()
