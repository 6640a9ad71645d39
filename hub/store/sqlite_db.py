"""The store's SQLite database behind hub's own `Database` interface (hub.store.base).

Transactions come from the `eventsourcing` library's datastore (its connection pool, WAL
mode); positions are kept in the library's `tracking` table, one row per name, written with
our own statement so that a projection's rows and its position commit together.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from eventsourcing.sqlite import SQLiteDatastore, SQLiteTrackingRecorder

from hub.store.base import Cursor, Database, Dialect, ScratchSession

SQLITE = Dialect(
    name="sqlite",
    upsert="INSERT OR REPLACE INTO",
    now_us="CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER)",
    clustered=" WITHOUT ROWID",
    index_columns=(
        "SELECT il.name, ii.name FROM pragma_index_list(?) il, pragma_index_info(il.name) ii"
        " WHERE il.origin = 'c' AND il.partial = 0 AND il.\"unique\" = 0"
        " ORDER BY il.name, ii.seqno"
    ),
    table_columns="SELECT name FROM pragma_table_info(?) ORDER BY cid",
    tables_like="SELECT name FROM sqlite_master WHERE type='table' AND name LIKE ? ESCAPE '\\'",
)

_TRACK_ONE_ROW = (
    "INSERT INTO tracking VALUES (?, ?) ON CONFLICT (application_name) DO UPDATE"
    " SET notification_id = excluded.notification_id"
    " WHERE tracking.notification_id < excluded.notification_id"
)
_TRACK_ROWS = "INSERT OR IGNORE INTO tracking VALUES (?, ?)"


class _SQLiteScratch:
    def __init__(self, conn: sqlite3.Connection, *, isolated_reads: bool) -> None:
        self.conn = conn
        self.isolated_reads = isolated_reads

    def cursor(self) -> Cursor:
        return self.conn.cursor()

    @contextmanager
    def transaction(self) -> Iterator[Cursor]:
        c = self.conn.cursor()
        c.execute("BEGIN")
        try:
            yield c
        except BaseException:
            self.conn.rollback()
            raise
        self.conn.commit()


class SQLiteDatabase(Database):
    """Transactions and tracked positions over one SQLite datastore."""

    dialect = SQLITE

    def __init__(self, datastore: SQLiteDatastore) -> None:
        self.datastore = datastore
        recorder = SQLiteTrackingRecorder(datastore)
        recorder.create_table()  # the library's table (and its migrations)
        self._max = recorder.select_max_tracking_id_statement
        self._track = _TRACK_ONE_ROW if datastore.single_row_tracking else _TRACK_ROWS

    @contextmanager
    def transaction(self, *, commit: bool) -> Iterator[Cursor]:
        """The pool's connection in a transaction; the cursor is sqlite3's own."""
        with self.datastore.transaction(commit=commit) as c:
            yield c.sqlite_cursor

    @contextmanager
    def scratch_session(self) -> Iterator[ScratchSession]:
        """A connection of its own with `synchronous=OFF` (commits do not wait for the disk:
        the durable transaction that swaps the tables in syncs the WAL they are in)."""
        pool = self.datastore.pool
        conn = sqlite3.connect(
            pool.db_name,
            uri=True,
            check_same_thread=False,
            isolation_level=None,
            cached_statements=256,
            timeout=pool.lock_timeout or 5,
        )
        try:
            conn.execute("PRAGMA synchronous=OFF")
            conn.execute("PRAGMA secure_delete=FAST")  # see hub.store.sqlite.SECURE_DELETE_FAST
            # an in-memory store shares one cache: a read meets a writer's table locks
            yield _SQLiteScratch(conn, isolated_reads=not pool.is_sqlite_memory_mode)
        finally:
            if conn.in_transaction:
                conn.rollback()
            conn.close()

    def lock(self, c: Cursor) -> None:
        c.execute("UPDATE tracking SET notification_id = notification_id WHERE 0")

    def tracked(self, name: str) -> int:
        with self.datastore.transaction(commit=False) as c:
            c.execute(self._max, (name,))
            row = c.fetchone()
        return int(row[0] or 0) if row is not None else 0

    def tracked_in(self, c: Cursor, name: str) -> int:
        c.execute(self._max, (name,))
        row = c.fetchone()
        return int(row[0] or 0) if row is not None else 0

    def claim(self, c: Cursor, name: str) -> None:
        self.lock(c)  # SQLite has one writer at a time: its write lock is every claim

    def track(self, c: Cursor, name: str, position: int) -> None:
        c.execute(self._track, (name, position))
