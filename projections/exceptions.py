"""The exceptions projection: everything that could not be captured, mapped, planned or written.

Kinds: `quarantine` (input set aside by ingest: validation, schema, decode, oversize),
`mapping` (a rule failed on a record), `plan` (a target's checks refused an entity, or its
rule failed), `write` (a target rejected a write or retries ran out).
Status: open → retrying → open | resolved; or resolved / ignored by an operator. A later good
change of the same record resolves an open capture or mapping exception by itself.

Events it reacts to: RecordQuarantined and PlanFailed open one; ExceptionAction is an operator's
(or the planner's) resolve, ignore or retry; SourceChanged resolves the record's quarantine
exception, DeltaPlanned the target record's plan exception. The canonical projection opens and
resolves `mapping` exceptions and the outbound projection `write` ones, through `open` and
`resolve_open`. What each kind says (its id, message, fix, details) is in exception_kinds.py.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from hub.store.base import Cursor, StoredEvent
from hub.store.streams import (
    EventType,
    ExceptionKind,
    ExceptionStatus,
    outbound_stream,
)
from projections.exception_kinds import (
    exception_id,
    outbound_key,
    plan_failed,
    plan_failure_text,
    quarantined,
)
from projections.tables import Context, Handler, Table

__all__ = [
    "EXCEPTIONS",
    "NOW_MAPS",
    "OPEN",
    "TABLES",
    "Flaggable",
    "OpenException",
    "by_id",
    "exception_id",
    "listed",
    "mapped_again_since",
    "open_at",
    "open_by_kind",
    "open_count",
    "open_of",
    "open_plans",
    "outbound_key",
    "plan_failure_text",
    "unmappable_since",
]

EXCEPTIONS = Table(
    "exceptions",
    (
        "id TEXT NOT NULL",
        "kind TEXT NOT NULL",
        "status TEXT NOT NULL",
        "subject TEXT NOT NULL",  # stream or target record the exception is about
        "entity TEXT",
        "canonical_id TEXT",
        "system TEXT",
        "object TEXT",
        "key TEXT",
        "field TEXT",
        "rule TEXT",
        "mapping_version INTEGER",
        "message TEXT NOT NULL",
        "fix TEXT NOT NULL",
        "details TEXT",  # JSON: raw input, delta, target answer
        "first_position INTEGER NOT NULL",
        "position INTEGER NOT NULL",
        "occurrences INTEGER NOT NULL",
        "resolution TEXT",
    ),
    pk=("id",),
    indexes=(("status", "kind"), ("subject",)),
)

TABLES = (EXCEPTIONS,)
COLUMNS = EXCEPTIONS.column_names
_LIVE = EXCEPTIONS.physical()
OPEN = (ExceptionStatus.OPEN, ExceptionStatus.RETRYING)
NOW_MAPS = "auto: the record now maps"
"""The resolution of a mapping exception whose record maps again (the planner looks for it)."""

_SELECT = f"SELECT {', '.join(COLUMNS)} FROM {_LIVE}"
_IS_OPEN = "status IN (?, ?)"


# -- read queries ------------------------------------------------------------------------------


class OpenException(NamedTuple):
    id: str
    status: str
    message: str


class Flaggable(NamedTuple):
    """A source record a mapping exception is about, and the position of its last change."""

    system: str
    object: str
    key: str | None
    position: int


def _row(r: Any) -> dict[str, Any]:
    return dict(zip(COLUMNS, r, strict=True))


def listed(c: Cursor, status: str = "open", kind: str | None = None) -> list[dict[str, Any]]:
    """Exceptions (every column; `details` as stored) of `status` ('open': open or retrying;
    'all': any) and `kind` (None: any), oldest first."""
    where: list[str] = []
    params: list[Any] = []
    if status == "open":
        where.append(_IS_OPEN)
        params += OPEN
    elif status != "all":
        where.append("status=?")
        params.append(status)
    if kind:
        where.append("kind=?")
        params.append(kind)
    sql = _SELECT + (" WHERE " + " AND ".join(where) if where else "")
    c.execute(sql + " ORDER BY first_position, id", params)
    return [_row(r) for r in c.fetchall()]


def by_id(c: Cursor, xid: str) -> dict[str, Any] | None:
    """One exception (every column; `details` as stored), or None."""
    c.execute(_SELECT + " WHERE id=?", (xid,))
    r = c.fetchone()
    return None if r is None else _row(r)


def open_count(c: Cursor) -> int:
    """How many exceptions are open or retrying."""
    c.execute(f"SELECT count(*) FROM {_LIVE} WHERE {_IS_OPEN}", OPEN)
    return int(c.fetchone()[0])


def open_by_kind(c: Cursor) -> dict[str, int]:
    """Open or retrying exceptions per kind, by kind."""
    c.execute(
        f"SELECT kind, count(*) FROM {_LIVE} WHERE {_IS_OPEN} GROUP BY kind ORDER BY kind", OPEN
    )
    return {str(k): int(n) for k, n in c.fetchall()}


def open_at(c: Cursor, position: int | None) -> list[dict[str, Any]]:
    """The exceptions open after `position` (None: now), oldest first: opened at or before it,
    and open now or settled after it (one opened again after a settlement counts from its
    first opening). Columns: id, kind, entity, canonical_id, system, object, rule,
    first_position, message."""
    cols = "id, kind, entity, canonical_id, system, object, rule, first_position, message"
    if position is None:
        c.execute(f"SELECT {cols} FROM {_LIVE} WHERE {_IS_OPEN} ORDER BY first_position", OPEN)
    else:
        c.execute(
            f"SELECT {cols} FROM {_LIVE} WHERE first_position <= ? AND ({_IS_OPEN} OR position > ?)"
            " ORDER BY first_position",
            (position, *OPEN, position),
        )
    names = cols.split(", ")
    return [dict(zip(names, r, strict=True)) for r in c.fetchall()]


def open_of(c: Cursor, kind: str, subject: str) -> OpenException | None:
    """The open or retrying exception of `kind` about `subject`, if there is one."""
    c.execute(
        f"SELECT id, status, message FROM {_LIVE} WHERE id=? AND {_IS_OPEN}",
        (exception_id(kind, subject), *OPEN),
    )
    r = c.fetchone()
    return None if r is None else OpenException(r[0], r[1], r[2])


def latest_of(c: Cursor, kind: str, subject: str) -> OpenException | None:
    """The exception of `kind` about `subject` whatever its status (open, retrying, resolved,
    ignored), if there ever was one."""
    c.execute(f"SELECT id, status, message FROM {_LIVE} WHERE id=?", (exception_id(kind, subject),))
    r = c.fetchone()
    return None if r is None else OpenException(r[0], r[1], r[2])


def open_plans(c: Cursor) -> list[tuple[str, str]]:
    """(canonical id, status) of every open or retrying `plan` exception, by id."""
    c.execute(
        f"SELECT canonical_id, status FROM {_LIVE} WHERE kind=? AND {_IS_OPEN} ORDER BY id",
        (ExceptionKind.PLAN, *OPEN),
    )
    return [(r[0], r[1]) for r in c.fetchall()]


def unmappable_since(c: Cursor, since: int) -> list[Flaggable]:
    """Records with an open or retrying mapping exception changed after `since`."""
    c.execute(
        f"SELECT system, object, key, position FROM {_LIVE} WHERE kind=?"
        f" AND {_IS_OPEN} AND position > ? ORDER BY position, id",
        (ExceptionKind.MAPPING, *OPEN, since),
    )
    return [Flaggable(*r) for r in c.fetchall()]


def mapped_again_since(c: Cursor, since: int) -> list[Flaggable]:
    """Records whose mapping exception was resolved after `since` because they map again."""
    c.execute(
        f"SELECT system, object, key, position FROM {_LIVE} WHERE kind=?"
        " AND status=? AND resolution=? AND position > ? ORDER BY position, id",
        (ExceptionKind.MAPPING, ExceptionStatus.RESOLVED, NOW_MAPS, since),
    )
    return [Flaggable(*r) for r in c.fetchall()]


# -- the projection in a fold ------------------------------------------------------------------


class Exceptions:
    """Keeps the exceptions table of one fold."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.rows = ctx.cache(EXCEPTIONS)
        self.table = ctx.table(EXCEPTIONS)
        self._open_subjects: set[str] = set()
        """Subjects with an open or retrying exception (most have none: no lookup for them)."""

    def handlers(self) -> dict[str, Handler]:
        return {
            EventType.SOURCE_CHANGED: self._on_source,
            EventType.RECORD_QUARANTINED: self._on_quarantine,
            EventType.DELTA_PLANNED: self._on_planned,
            EventType.PLAN_FAILED: self._on_plan_failed,
            EventType.EXCEPTION_ACTION: self._on_action,
        }

    def load(self, c: Cursor) -> None:
        c.execute(f"SELECT DISTINCT subject FROM {self.table} WHERE {_IS_OPEN}", OPEN)
        self._open_subjects = {r[0] for r in c.fetchall()}

    def get(self, xid: str) -> dict[str, Any] | None:
        assert self.ctx.c is not None
        return self.rows.get(self.ctx.c, xid)

    def flush(self, c: Cursor) -> None:
        self.rows.flush(c)

    def discard(self) -> None:
        self.rows.discard()

    # -- opening and resolving ------------------------------------------------------------------

    def open(self, xid: str, values: dict[str, Any]) -> None:
        """Open exception `xid` (`values`: kind, subject, message, fix and what else is known),
        or count one more occurrence of it if it is open."""
        c = self.ctx.c
        assert c is not None
        position = self.ctx.position
        row = self.rows.get(c, xid)
        if row is not None and row["status"] in OPEN:
            self.rows.put(
                xid,
                {
                    **row,
                    **values,
                    "status": ExceptionStatus.OPEN,
                    "position": position,
                    "occurrences": row["occurrences"] + 1,
                },
            )
            return
        self._open_subjects.add(values["subject"])
        self.rows.put(
            xid,
            {
                "id": xid,
                "status": ExceptionStatus.OPEN,
                "entity": None,
                "canonical_id": None,
                "system": None,
                "object": None,
                "key": None,
                "field": None,
                "rule": None,
                "mapping_version": None,
                "details": None,
                "resolution": None,
                **values,
                "first_position": position,
                "position": position,
                "occurrences": 1,
            },
        )

    def resolve_open(self, subject: str, kinds: tuple[str, ...], note: str) -> None:
        """Resolve the open exceptions of `kinds` about `subject`, with `note`."""
        if subject not in self._open_subjects:
            return
        still_open = False
        for row in self._open_for(subject):
            if row["kind"] in kinds:
                self.rows.put(
                    row["id"],
                    {
                        **row,
                        "status": ExceptionStatus.RESOLVED,
                        "resolution": note,
                        "position": self.ctx.position,
                    },
                )
            else:
                still_open = True
        if not still_open:
            self._open_subjects.discard(subject)

    def _open_for(self, subject: str) -> list[dict[str, Any]]:
        c = self.ctx.c
        assert c is not None
        self.rows.flush(c)
        c.execute(f"SELECT id FROM {self.table} WHERE subject=? AND {_IS_OPEN}", (subject, *OPEN))
        ids = [r[0] for r in c.fetchall()]
        return [row for xid in ids if (row := self.rows.get(c, xid)) is not None]

    # -- events ---------------------------------------------------------------------------------

    def _on_source(self, e: StoredEvent, d: dict[str, Any]) -> None:
        if e.stream in self._open_subjects:  # most records have none: not even a call
            self.resolve_open(
                e.stream, (ExceptionKind.QUARANTINE,), "auto: a later valid change was captured"
            )

    def _on_planned(self, e: StoredEvent, d: dict[str, Any]) -> None:
        subject = outbound_stream(d["target"], d["object"], d["canonical_id"])
        self.resolve_open(subject, (ExceptionKind.PLAN,), "auto: planned")

    def _on_quarantine(self, e: StoredEvent, d: dict[str, Any]) -> None:
        self.open(*quarantined(e, d))

    def _on_plan_failed(self, e: StoredEvent, d: dict[str, Any]) -> None:
        self.open(*plan_failed(d))

    def _on_action(self, e: StoredEvent, d: dict[str, Any]) -> None:
        """resolve / ignore settle the exception; anything else (retry) makes it `retrying`
        (the canonical projection re-maps the record of a mapping exception, the outbound
        projection sends a failed write again)."""
        row = self.get(d["exception_id"])
        if row is None:
            return
        action = d["action"]
        note = f"{action} by {d['by']}" + (f": {d['note']}" if d["note"] else "")
        if action in ("resolve", "ignore"):
            status = ExceptionStatus.RESOLVED if action == "resolve" else ExceptionStatus.IGNORED
        else:
            status = ExceptionStatus.RETRYING
            self._open_subjects.add(row["subject"])
        self.rows.put(
            row["id"], {**row, "status": status, "resolution": note, "position": self.ctx.position}
        )
