"""Table definitions, physical names per generation, a write-back row cache, and the context the
projections of one fold share.

Every projection table has a logical name (e.g. `canonical`); its physical name is
`p_<name>` for the live generation and `p_<name>__<gen>` while a rebuild fills a fresh one.
SQL that differs per database comes from the store's Dialect (hub.store.base).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hub.store.base import Cursor, Dialect, StoredEvent


@dataclass(frozen=True, slots=True)
class Table:
    """One projection table: column DDL, primary key, secondary indexes.

    `folded` names the indexes the fold itself queries: a rebuild keeps those while it fills a
    fresh table and builds the others once, at the swap (cheaper than row by row).
    Tables are clustered on their primary key where the database can (the dialect's
    `clustered` suffix; SQLite's WITHOUT ROWID): one B-tree per row, not two.
    """

    name: str
    columns: tuple[str, ...]
    pk: tuple[str, ...]
    indexes: tuple[tuple[str, ...], ...] = ()
    folded: tuple[tuple[str, ...], ...] = ()

    @property
    def column_names(self) -> list[str]:
        return [c.split()[0] for c in self.columns]

    def physical(self, generation: str = "") -> str:
        return f"p_{self.name}__{generation}" if generation else f"p_{self.name}"

    def create(
        self, c: Cursor, dialect: Dialect, generation: str = "", *, deferred: bool = False
    ) -> None:
        """Create the table and its indexes (`deferred`: only the `folded` ones)."""
        t = self.physical(generation)
        c.execute(
            f"CREATE TABLE IF NOT EXISTS {t} ({', '.join(self.columns)},"
            f" PRIMARY KEY ({', '.join(self.pk)})){dialect.clustered}"
        )
        for cols in self.folded if deferred else self.indexes:
            c.execute(f"CREATE INDEX IF NOT EXISTS {t}_{'_'.join(cols)} ON {t} ({', '.join(cols)})")


class RowCache:
    """Rows of one table by primary key, loaded on demand, written back in one executemany.

    `get` returns a dict (the row) or None; `put` marks a row dirty; `flush` upserts dirty rows
    (with the dialect's upsert).
    Rows stay cached across flushes up to `limit` entries, then the cache is cleared.
    `complete=True` promises that every row of the table went through this cache (a fresh
    table being rebuilt): a miss is then an absent row, without a SELECT, until the first clear.
    """

    def __init__(
        self,
        table: Table,
        physical: str,
        dialect: Dialect,
        limit: int = 100_000,
        *,
        complete: bool = False,
    ) -> None:
        self.table = table
        self.physical = physical
        self.limit = limit
        self.complete = complete
        self.cols = table.column_names
        self._values = operator.itemgetter(*self.cols)
        self.rows: dict[Any, dict[str, Any] | None] = {}
        self.dirty: set[Any] = set()
        where = " AND ".join(f"{k}=?" for k in table.pk)
        self._select = f"SELECT {', '.join(self.cols)} FROM {physical} WHERE {where}"
        self._upsert = (
            f"{dialect.upsert} {physical} ({', '.join(self.cols)})"
            f" VALUES ({', '.join('?' * len(self.cols))})"
        )
        self._delete = f"DELETE FROM {physical} WHERE {where}"

    def get(self, c: Cursor, key: Any) -> dict[str, Any] | None:
        if key in self.rows:
            return self.rows[key]
        if self.complete:
            return None
        c.execute(self._select, key if isinstance(key, tuple) else (key,))
        r = c.fetchone()
        row = None if r is None else dict(zip(self.cols, r, strict=True))
        self.rows[key] = row
        return row

    def put(self, key: Any, row: dict[str, Any] | None) -> None:
        """Store `row` under `key`; None deletes the row at the next flush."""
        self.rows[key] = row
        self.dirty.add(key)

    def flush(self, c: Cursor) -> None:
        upserts = []
        deletes = []
        for key in self.dirty:
            row = self.rows[key]
            if row is None:
                deletes.append(key if isinstance(key, tuple) else (key,))
            else:
                upserts.append(self._values(row))
        if deletes:
            c.executemany(self._delete, deletes)
        if upserts:
            c.executemany(self._upsert, upserts)
        self.dirty.clear()
        if len(self.rows) > self.limit:
            self.rows.clear()
            self.complete = False

    def discard(self) -> None:
        """Forget everything (after a rolled-back transaction)."""
        self.rows.clear()
        self.dirty.clear()
        self.complete = False


class Context:
    """What the projections of one fold share: where their tables are (the generation's
    physical names), the database's dialect, whether the tables are fresh (a rebuild), and the
    event being applied: its cursor, position, and the audit sequence within it."""

    __slots__ = ("c", "dialect", "fresh", "physical", "position", "seq")

    def __init__(self, physical: Callable[[str], str], dialect: Dialect, *, fresh: bool) -> None:
        self.physical = physical
        self.dialect = dialect
        self.fresh = fresh
        self.c: Cursor | None = None
        self.position = 0
        self.seq = 0

    def cache(self, table: Table) -> RowCache:
        """A write-back cache of `table` in this fold's generation (see RowCache `complete`)."""
        return RowCache(table, self.physical(table.name), self.dialect, complete=self.fresh)

    def table(self, table: Table) -> str:
        """The physical name of `table` in this fold's generation."""
        return self.physical(table.name)


Handler = Callable[[StoredEvent, Any], None]
"""What a projection does with one event: called with the event and its decoded payload."""
