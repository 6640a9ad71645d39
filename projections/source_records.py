"""Source records, part of the canonical projection: the latest record of every source stream,
and the records waiting for a link.

Tables: `source_records` (re-mapped when a new mapping version is deployed, and the planner's
view of what a target holds), `waiting` (records whose mapping needs a link that does not exist
yet; captured later, the link triggers their re-mapping, so the order in which systems are read
does not matter). The canonical projection stores each SourceChanged record here before it maps
it, and registers what a failed mapping waits for; each link put releases what waited for it
into the coordinator's re-map queue. Its tables are tracked with the canonical projection's.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

from hub.store.base import Cursor, StoredEvent
from hub.values import dumps, to_json
from projections.links import LINKS, TARGET
from projections.tables import Context, Table

__all__ = [
    "SOURCE_RECORDS",
    "TABLES",
    "WAITING",
    "SourceRecord",
    "drifted_since",
    "live_records",
    "source_record",
]

SOURCE_RECORDS = Table(
    "source_records",
    (
        "stream TEXT NOT NULL",
        "system TEXT NOT NULL",
        "object TEXT NOT NULL",
        "key TEXT NOT NULL",
        "record TEXT",
        "deleted INTEGER NOT NULL",
        "position INTEGER NOT NULL",
        "source_time INTEGER",
        "captured_at INTEGER",
    ),
    pk=("stream",),
    indexes=(("system", "object", "key"), ("position",)),
)

WAITING = Table(
    "waiting",
    (
        "system TEXT NOT NULL",
        "object TEXT NOT NULL",
        "key TEXT NOT NULL",
        "stream TEXT NOT NULL",
    ),
    pk=("system", "object", "key", "stream"),
)
"""Source records whose mapping failed on a missing link: re-mapped when the link appears."""

TABLES = (SOURCE_RECORDS, WAITING)
_COLUMNS = SOURCE_RECORDS.column_names
_LIVE = SOURCE_RECORDS.physical()

# -- read queries ------------------------------------------------------------------------------


class SourceRecord(NamedTuple):
    """The latest record of a source stream (`record` None once deleted)."""

    stream: str
    system: str
    object: str
    key: str
    record: dict[str, Any] | None
    deleted: bool
    position: int
    source_time: int | None
    captured_at: int | None


def _record(r: Any) -> SourceRecord:
    record = None if r[4] is None else json.loads(r[4])
    return SourceRecord(r[0], r[1], r[2], r[3], record, bool(r[5]), r[6], r[7], r[8])


def source_record(c: Cursor, stream: str) -> SourceRecord | None:
    c.execute(f"SELECT {', '.join(_COLUMNS)} FROM {_LIVE} WHERE stream=?", (stream,))
    r = c.fetchone()
    return None if r is None else _record(r)


def live_records(c: Cursor, *, table: str = _LIVE) -> list[SourceRecord]:
    """Every source record not deleted, by stream (`table`: a generation of source_records)."""
    c.execute(f"SELECT {', '.join(_COLUMNS)} FROM {table} WHERE deleted=0 ORDER BY stream")
    return [_record(r) for r in c.fetchall()]


def live_of(c: Cursor, system: str, obj: str) -> list[SourceRecord]:
    """Every source record of system/obj not deleted, by key."""
    c.execute(
        f"SELECT {', '.join(_COLUMNS)} FROM {_LIVE} WHERE system=? AND object=? AND deleted=0"
        " ORDER BY key",
        (system, obj),
    )
    return [_record(r) for r in c.fetchall()]


def captured_since(c: Cursor, since: int) -> bool:
    """Whether any source record was captured after position `since`."""
    c.execute(f"SELECT 1 FROM {_LIVE} WHERE position > ? LIMIT 1", (since,))
    return c.fetchone() is not None


def drifted_since(c: Cursor, since: int) -> list[tuple[str, int]]:
    """(canonical id, position) of the entities whose target records were captured after
    `since` (drift at the target, or our own write's echo), in capture order."""
    c.execute(
        f"SELECT DISTINCT l.canonical_id, r.position FROM {_LIVE} r"
        f" JOIN {LINKS.physical()} l ON l.system = r.system AND l.object = r.object"
        " AND l.key = r.key WHERE r.position > ? AND l.role = ?"
        " ORDER BY r.position, l.canonical_id",
        (since, TARGET),
    )
    return [(r[0], r[1]) for r in c.fetchall()]


# -- in a fold ---------------------------------------------------------------------------------


class SourceRecords:
    """Keeps the source_records and waiting tables of one fold."""

    def __init__(self, ctx: Context, remap: Callable[[str], None]) -> None:
        """`remap(stream)` queues a record that waited for a link for re-mapping."""
        self.ctx = ctx
        self.remap = remap
        self.rows = ctx.cache(SOURCE_RECORDS)
        self.waiting = ctx.cache(WAITING)
        self.table = ctx.table(SOURCE_RECORDS)
        self.t_waiting = ctx.table(WAITING)
        self._waiting_keys: set[tuple[str, str, str]] = set()
        """The links something waits for (most links put have nothing waiting: no lookup)."""

    def load(self, c: Cursor) -> None:
        c.execute(f"SELECT DISTINCT system, object, key FROM {self.t_waiting}")
        self._waiting_keys = {(r[0], r[1], r[2]) for r in c.fetchall()}

    def flush(self, c: Cursor) -> None:
        self.rows.flush(c)
        self.waiting.flush(c)

    def discard(self) -> None:
        self.rows.discard()
        self.waiting.discard()

    def get(self, stream: str) -> dict[str, Any] | None:
        assert self.ctx.c is not None
        return self.rows.get(self.ctx.c, stream)

    def put(
        self,
        e: StoredEvent,
        system: str,
        obj: str,
        key: str,
        record: Mapping[str, Any] | None,
        source_time: int | None,
        captured_at: int | None,
    ) -> None:
        """Store the record SourceChanged `e` captured (None: deleted) as its stream's latest."""
        deleted = record is None
        self.rows.put(
            e.stream,
            {
                "stream": e.stream,
                "system": system,
                "object": obj,
                "key": key,
                "record": None if deleted else dumps(to_json(record)),
                "deleted": int(deleted),
                "position": e.position,
                "source_time": source_time,
                "captured_at": captured_at,
            },
        )

    def live(self) -> list[SourceRecord]:
        """See live_records, in this fold's tables."""
        assert self.ctx.c is not None
        return live_records(self.ctx.c, table=self.table)

    def wait(self, stream: str, links: Iterable[tuple[str, str, str]]) -> None:
        """Source record `stream` waits for `links` (system, object, key) to be put."""
        for link in links:
            self._waiting_keys.add(link)
            self.waiting.put(
                (*link, stream),
                {"system": link[0], "object": link[1], "key": link[2], "stream": stream},
            )

    def release(self, system: str, obj: str, key: str) -> None:
        """Link system/obj/key was just put: queue the records that waited for it, by stream
        (they no longer wait)."""
        if (system, obj, key) not in self._waiting_keys:
            return
        c = self.ctx.c
        assert c is not None
        self._waiting_keys.discard((system, obj, key))
        self.waiting.flush(c)
        c.execute(
            f"SELECT stream FROM {self.t_waiting} WHERE system=? AND object=? AND key=?"
            " ORDER BY stream",
            (system, obj, key),
        )
        for (stream,) in c.fetchall():
            self.waiting.put((system, obj, key, stream), None)
            self.remap(stream)

    def forget_waiting(self, c: Cursor) -> None:
        """Nothing waits for a link any more (a new mapping: what waits is found afresh)."""
        c.execute(f"DELETE FROM {self.t_waiting}")
        self.waiting.discard()
        self._waiting_keys.clear()
