"""The audit projection: every canonical field change with its lineage.

One row per change of an entity: the changed fields' new values (`new`, a JSON object; NULL for a
delete) and previous values (`old`, a JSON object of the fields that had one; NULL for a create
or restore), the source system, object and record, the event position, the mapping version, the
source time and the capture time. `history` reads it field by field. Because every state change
is here, `state --as-of` is a query over this table, not a replay. One row per change rather
than per field keeps a rebuild's writes to one row per event.

It reacts to no event type of its own: the canonical projection records each change it makes.
Rows are only ever inserted, in multi-row INSERTs at the flush.
"""

from __future__ import annotations

import json
from collections.abc import Generator, Iterable, Iterator
from typing import Any, NamedTuple

import orjson

from hub.canonical_schemas import CanonicalSchemas
from hub.store.base import Cursor, fetch_rows, stream_rows
from hub.store.rows import MultiRowInsert
from projections.tables import Context, Table

__all__ = [
    "AUDIT",
    "CHANGE_COLUMNS",
    "COLUMNS",
    "FORM_COLUMNS",
    "TABLES",
    "Lineage",
    "States",
    "changed_at",
    "changes_after",
    "changes_streamed",
    "history",
    "last_change",
    "row_count",
    "state_at",
    "states_at",
    "states_of",
]

AUDIT = Table(
    "audit",
    (
        "position INTEGER NOT NULL",
        "seq INTEGER NOT NULL",
        "canonical_id TEXT NOT NULL",
        "entity TEXT NOT NULL",
        "op TEXT NOT NULL",  # create | update | delete | restore
        "old TEXT",  # {field: previous value} of the changed fields that had one
        "new TEXT",  # {field: new value} of the changed fields
        "system TEXT NOT NULL",
        "object TEXT NOT NULL",
        "source_key TEXT NOT NULL",
        "mapping_version INTEGER NOT NULL",
        "source_time INTEGER",
        "captured_at INTEGER",
        # the change as the publisher sends it, made by a live fold when publishing is on
        # (Context.publish_form; NULL from a rebuild): the Avro change body, the length of
        # the state body it ends with (-1: none), what it was made under (the schema's digest)
        "avro BLOB",
        "avro_state INTEGER",
        "avro_schema BLOB",
    ),
    pk=("position", "seq"),
    indexes=(("canonical_id", "position"),),
    derived=("avro", "avro_state", "avro_schema"),
)

TABLES = (AUDIT,)
COLUMNS = AUDIT.content_names
"""The audit trail's columns (without the published form)."""
_LIVE = AUDIT.physical()


class Lineage(NamedTuple):
    """Where a change comes from: the source record, the mapping version, and its times (the
    last columns of an audit row)."""

    system: str
    object: str
    key: str
    mapping_version: int
    source_time: int | None
    captured_at: int | None


# -- read queries ------------------------------------------------------------------------------


def state_at(
    c: Cursor, canonical_id: str, position: int | None, *, table: str = _LIVE
) -> dict[str, Any] | None:
    """The canonical fields of one entity as they were after `position` (None: now).

    Returns None if the entity did not exist (or was deleted) at that position.
    """
    for _, fields in _states(c, "canonical_id", canonical_id, position, table):
        return fields
    return None


def states_at(
    c: Cursor, entity: str, position: int | None, *, table: str = _LIVE
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(canonical id, fields) of every `entity` that existed after `position` (None: now), by
    canonical id; streamed, one entity's rows in memory at a time."""
    return _states(c, "entity", entity, position, table)


def changed_at(c: Cursor, canonical_id: str, position: int, *, table: str = _LIVE) -> int | None:
    """When the change of `canonical_id` in force after `position` happened at its source
    (its source time, else its capture time; µs), or None."""
    c.execute(
        f"SELECT coalesce(source_time, captured_at) FROM {table} WHERE canonical_id=?"
        " AND position<=? ORDER BY position DESC, seq DESC LIMIT 1",
        (canonical_id, position),
    )
    r = c.fetchone()
    return None if r is None or r[0] is None else int(r[0])


def states_of(
    c: Cursor,
    canonical_ids: Iterable[str],
    position: int | None,
    *,
    table: str = _LIVE,
    seq: int | None = None,
) -> dict[str, dict[str, Any]]:
    """The fields of each of `canonical_ids` that existed after `position` (None: now; with
    `seq`, after the change (position, seq)): one query per 500 ids, not one per entity."""
    ids = sorted(set(canonical_ids))
    out: dict[str, dict[str, Any]] = {}
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        where = f"canonical_id IN ({','.join('?' * len(chunk))})"
        if seq is not None and position is not None:
            where += " AND (position<? OR (position=? AND seq<=?))"
            out.update(_states(c, where, [*chunk, position, position, seq], None, table))
        else:
            out.update(_states(c, where, chunk, position, table))
    return out


def last_change(c: Cursor, upto: int, *, table: str = _LIVE) -> tuple[int, int]:
    """(position, seq) of the last change at or before position `upto`; (0, 0): none."""
    c.execute(
        f"SELECT position, seq FROM {table} WHERE position<=? ORDER BY position DESC, seq DESC"
        " LIMIT 1",
        (upto,),
    )
    r = c.fetchone()
    return (0, 0) if r is None else (int(r[0]), int(r[1]))


CHANGE_COLUMNS = (
    "position", "seq", "canonical_id", "entity", "op", "new", "system", "object",
    "source_key", "mapping_version", "avro", "avro_state", "avro_schema",
)  # fmt: skip
"""The columns of a row `changes_after` returns, in order (`new`: JSON text, or None; the
published form: NULL when the fold did not make it)."""
FORM_COLUMNS = tuple(c for c in CHANGE_COLUMNS if c != "new")
"""The columns of a change as the publisher sends its published form (without the fields'
JSON it does not read: ≈ 0.5 µs a row less on PostgreSQL)."""


def changes_after(
    c: Cursor, position: int, seq: int, upto: int, limit: int, *, table: str = _LIVE
) -> list[tuple[Any, ...]]:
    """Up to `limit` changes after (position, seq), up to position `upto`, in store order:
    rows of CHANGE_COLUMNS as stored (the change feed makes one object of each)."""
    return fetch_rows(c, *_after(position, seq, upto, limit, table, CHANGE_COLUMNS))


def changes_streamed(
    c: Cursor, position: int, seq: int, upto: int, limit: int, size: int
) -> Generator[list[tuple[Any, ...]], None, None]:
    """As `changes_after`, the rows of FORM_COLUMNS (what the publisher reads), from one
    query, in lists of up to `size` rows (hub.store.base.stream_rows: `c` runs no other
    query until the last list is taken)."""
    return stream_rows(c, *_after(position, seq, upto, limit, _LIVE, FORM_COLUMNS), size)


def _after(
    position: int, seq: int, upto: int, limit: int, table: str, columns: tuple[str, ...]
) -> tuple[str, tuple[int, ...]]:
    """The statement and parameters of `changes_after` and `changes_streamed`."""
    # one range of the primary key from the place on, read in its order up to the limit, as
    # a row comparison: both backends search the key with it (EXPLAIN QUERY PLAN), and
    # PostgreSQL sends 100k rows in 0.094-0.097 s against 0.134-0.142 with the range written
    # `position>=? AND (position>? OR seq>?)` (a filter on every row; /tmp script, best of 5);
    # `position>? OR (position=? AND seq>?)` made SQLite read every row before the place again
    return (
        f"SELECT {', '.join(columns)} FROM {table}"
        " WHERE (position, seq) > (?, ?) AND position<=?"
        " ORDER BY position, seq LIMIT ?",
        (position, seq, upto, limit),
    )


def _states(
    c: Cursor, column: str, value: str | list[Any], position: int | None, table: str
) -> Iterator[tuple[str, dict[str, Any]]]:
    """The entities whose audit rows have `column` = `value` (or match the condition `column`
    with the parameters `value`), each folded from its changes up to `position`: (canonical
    id, fields) of those that existed then, by canonical id."""
    if isinstance(value, list):
        sql = f"SELECT canonical_id, op, new FROM {table} WHERE {column}"
        params: list[Any] = list(value)
    else:
        sql = f"SELECT canonical_id, op, new FROM {table} WHERE {column}=?"
        params = [value]
    if position is not None:
        sql += " AND position<=?"
        params.append(position)
    c.execute(sql + " ORDER BY canonical_id, position, seq", params)
    current: str | None = None
    state: dict[str, Any] | None = None
    for cid, op, new in c:
        if cid != current:
            if current is not None and state is not None:
                yield current, state
            current, state = cid, None
        if op == "delete":
            state = None
            continue
        if state is None:
            state = {}
        # written by hub.values.dumps (never NaN): orjson reads it 3.4x as fast, measured
        state.update(orjson.loads(new))
    if current is not None and state is not None:
        yield current, state


def row_count(c: Cursor) -> int:
    """How many changes the audit trail holds."""
    c.execute(f"SELECT count(*) FROM {_LIVE}")
    return int(c.fetchone()[0])


def history(c: Cursor, canonical_id: str, *, table: str = _LIVE) -> list[dict[str, Any]]:
    """Every field change of one entity, oldest first: one dict per changed field (`field`,
    `old`, `new`; `old` is None when the field had no value) with the row's other columns; a
    change without fields (a delete, an empty create) gives one dict with field '*'."""
    c.execute(
        f"SELECT {', '.join(COLUMNS)} FROM {table} WHERE canonical_id=? ORDER BY position, seq",
        (canonical_id,),
    )
    out = []
    for r in c.fetchall():
        row = dict(zip(COLUMNS, r, strict=True))
        old = json.loads(row.pop("old") or "{}")
        new = json.loads(row.pop("new") or "{}")
        if not new:
            out.append({**row, "field": "*", "old": None, "new": None})
        for field in sorted(new):
            out.append(
                {
                    **row,
                    "field": field,
                    "old": old.get(field),
                    "new": new[field],
                }
            )
    return out


# -- the projection in a fold ------------------------------------------------------------------


States = tuple[CanonicalSchemas, dict[str, Any] | None, dict[str, Any] | None, list[str]]
"""What a change's published form is made of (Audit.record)."""


class Audit:
    """Collects the audit rows of one fold until the flush inserts them."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.rows: list[tuple[Any, ...]] = []
        # a fold that makes no form (a rebuild, no Kafka) writes the trail's columns only:
        # three NULLs more a row made a rebuild 5-7 % slower (bench/rebuild.py)
        columns = AUDIT.column_names if ctx.publish_form is not None else AUDIT.content_names
        self._insert = MultiRowInsert(
            f"INSERT INTO {ctx.table(AUDIT)} ({', '.join(columns)})",
            len(columns),
            max_rows=32_766 // len(columns),
        )

    @property
    def forms(self) -> bool:
        """Whether this fold makes the published form (the caller then passes the states)."""
        return self.ctx.publish_form is not None

    def record(
        self,
        cid: str,
        entity: str,
        op: str,
        old: str | None,
        new: str | None,
        lineage: Lineage,
        states: States | None = None,
    ) -> None:
        """One audit row: `old`/`new` are the changed fields' JSON objects (see AUDIT);
        `states`: the canonical schemas in force, the entity's whole state before and after,
        and the changed fields' names (when `forms`: the published form is made of them)."""
        ctx = self.ctx
        ctx.seq += 1
        form = ctx.publish_form
        if form is None:
            self.rows.append((ctx.position, ctx.seq, cid, entity, op, old, new, *lineage))
            return
        made = None
        if states is not None:
            schemas, before, after, changed = states
            made = form(schemas, cid, entity, op, ctx.position, before, after, changed)
        if made is None:
            self.rows.append((ctx.position, ctx.seq, cid, entity, op, old, new, *lineage,
                              None, None, None))  # fmt: skip
        else:
            self.rows.append((ctx.position, ctx.seq, cid, entity, op, old, new, *lineage, *made))

    def flush(self, c: Cursor) -> None:
        if self.rows:
            self._insert.run(c, self.rows)
            self.rows.clear()

    def discard(self) -> None:
        self.rows.clear()
