"""The audit projection: every canonical field change with its lineage.

One row per changed field: old and new value (JSON), the source system, object and record, the
event position, the mapping version, the source time and the capture time. Because every state
change is here, `state --as-of` is a query over this table, not a replay.
"""

from __future__ import annotations

import json
from typing import Any

from eventsourcing.sqlite import SQLiteCursor

from projections.tables import Table

AUDIT = Table(
    "audit",
    (
        "position INTEGER NOT NULL",
        "seq INTEGER NOT NULL",
        "canonical_id TEXT NOT NULL",
        "entity TEXT NOT NULL",
        "op TEXT NOT NULL",  # create | update | delete | restore
        "field TEXT NOT NULL",  # '*' for whole-entity ops without field changes
        "old TEXT",
        "new TEXT",
        "system TEXT NOT NULL",
        "object TEXT NOT NULL",
        "source_key TEXT NOT NULL",
        "mapping_version INTEGER NOT NULL",
        "source_time INTEGER",
        "captured_at INTEGER",
    ),
    pk=("position", "seq"),
    indexes=(("canonical_id", "position"),),
)

TABLES = (AUDIT,)
COLUMNS = AUDIT.column_names


def state_at(
    c: SQLiteCursor, table: str, canonical_id: str, position: int | None
) -> dict[str, Any] | None:
    """The canonical fields of one entity as they were after `position` (None: now).

    Returns None if the entity did not exist (or was deleted) at that position.
    """
    sql = f"SELECT op, field, new FROM {table} WHERE canonical_id=?"
    params: list[Any] = [canonical_id]
    if position is not None:
        sql += " AND position<=?"
        params.append(position)
    c.execute(sql + " ORDER BY position, seq", params)
    state: dict[str, Any] | None = None
    for op, field, new in c.fetchall():
        if op == "delete":
            state = None
            continue
        if state is None:
            state = {}
        if field != "*":
            state[field] = None if new is None else json.loads(new)
    return state


def history(c: SQLiteCursor, table: str, canonical_id: str) -> list[dict[str, Any]]:
    """Every audit row of one entity, oldest first."""
    c.execute(f"SELECT * FROM {table} WHERE canonical_id=? ORDER BY position, seq", (canonical_id,))
    return [dict(zip(COLUMNS, r, strict=True)) for r in c.fetchall()]
