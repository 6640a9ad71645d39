"""The embedded event store: one SQLite file, on the `eventsourcing` library's SQLite recorder.

Events live in the recorder's `stored_events` table (originator_id = stream, originator_version
= stream version, topic = event type, state = Avro payload; rowid = global position). Two side
tables are written in the same transaction as the events they describe:

- `synchub_schemas`: every Avro schema a stored payload was written with;
- `synchub_clock`: one row per append (last position, wall-clock time) for time → position.
  The time is integer microseconds since the Unix epoch, the precision times are shown and
  parsed at, so `position_at(time_of(p))` includes p. A store written by an older synchub
  (REAL seconds) is converted once when it is opened (`_upgrade_clock`).

Positions are gap-free because the table is append-only (no rowid is ever freed) and SQLite
gives each new row max(rowid) + 1 while the writer holds the database lock.

An append inserts and commits in the caller's thread; `append_async` does both on one background
thread (SQLite releases the GIL as it steps and syncs), in call order, holding the store's write
lock from the insert to the end of the commit, so appends stay one at a time and in order. A
batch's events go in one multi-row INSERT (`_ROWS`): every statement hands the GIL back and
forth between the threads, and fewer of them were measured faster (bench/ingest.py).
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

from eventsourcing.persistence import IntegrityError, PersistenceError
from eventsourcing.sqlite import (
    SQLITE3_DEFAULT_LOCK_TIMEOUT,
    SQLiteApplicationRecorder,
    SQLiteConnection,
    SQLiteConnectionPool,
    SQLiteCursor,
    SQLiteDatastore,
)

from hub.avro import HEADER_LEN, Codec, Schema
from hub.errors import ConcurrencyError
from hub.store.base import (
    CommitThread,
    Cursor,
    EventStore,
    NewEvent,
    StoredEvent,
    new_schemas,
)
from hub.store.leases import LEASES_TABLE
from hub.store.rows import MultiRowInsert
from hub.store.sqlite_db import SQLiteDatabase

DATABASE_ERRORS: tuple[type[Exception], ...] = (sqlite3.Error, PersistenceError)
"""What the database and the library raise when the store's file cannot be used (callers
name the setting to fix; they never import the driver themselves)."""

_SIDE_TABLES = (
    "CREATE TABLE IF NOT EXISTS synchub_schemas ("
    " fingerprint BLOB NOT NULL UNIQUE, name TEXT NOT NULL, schema TEXT NOT NULL,"
    " stored_at REAL NOT NULL)",
    "CREATE TABLE IF NOT EXISTS synchub_clock ("
    " last_position INTEGER PRIMARY KEY, recorded_at INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS synchub_clock_time ON synchub_clock (recorded_at)",
    LEASES_TABLE.format(text="TEXT", int="INTEGER"),
)

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICROSECOND = dt.timedelta(microseconds=1)


_EVENT_COLUMNS = "originator_id, originator_version, topic, state"

SECURE_DELETE_FAST = "PRAGMA secure_delete=FAST"
"""Debian builds SQLite with SECURE_DELETE: every freed page is overwritten with zeros, so a
rebuild's swap, dropping the old projection tables, wrote their whole size to the WAL (75 MB
for 100k events) and checkpointed it (≈ 0.7 s of a 7 s rebuild, measured). FAST zeroes
deleted content only where the page is written anyway. Nothing is lost to privacy: what
projections delete is derived from events the store keeps forever (it never deletes them)."""

_ROWS = 4096
"""Rows per INSERT statement (a power of two; 4 parameters a row, SQLite ≥ 3.32 takes 32,766)."""


class _StatementCachingPool(SQLiteConnectionPool):
    """The library's pool, with a real prepared-statement cache: it passes
    `cached_statements=True`, which sqlite3 reads as a cache of ONE statement, so every
    alternation of two statements (a projection's SELECT and INSERT) re-prepared both."""

    def _create_connection(self) -> SQLiteConnection:
        c = sqlite3.connect(
            database=self.db_name,
            uri=True,
            check_same_thread=False,
            isolation_level=None,
            cached_statements=256,
            timeout=self.lock_timeout or SQLITE3_DEFAULT_LOCK_TIMEOUT,
        )
        if not self.is_sqlite_memory_mode:
            c.execute("PRAGMA journal_mode=WAL")
            self.is_journal_mode_wal = True
        c.execute(SECURE_DELETE_FAST)
        c.row_factory = sqlite3.Row
        return SQLiteConnection(sqlite_conn=c, max_age=self.max_age)

    def put_connection(self, conn: SQLiteConnection) -> None:
        """Return `conn` rolled back. A COMMIT that fails (SQLITE_BUSY, a full disk, a deferred
        constraint) leaves SQLite's transaction open and the library does not roll it back: the
        next user of the connection would fail to BEGIN, or commit the failed work with its own.
        A connection that cannot roll back is closed instead of pooled."""
        raw = conn._sqlite_conn
        if not conn.closed and raw.in_transaction:
            try:
                raw.rollback()
            except sqlite3.Error:
                conn.close()
        super().put_connection(conn)


class SQLiteEventStore(CommitThread, EventStore):
    """Event store in one SQLite file (WAL mode). `path` may be ':memory:' for tests."""

    def __init__(self, path: str, *, lock_timeout: int = 30) -> None:
        self.path = path
        self.location = path
        self.datastore = SQLiteDatastore(
            db_name=path if path != ":memory:" else "file::memory:?cache=shared",
            lock_timeout=lock_timeout,
            originator_id_type="text",
        )
        self.datastore.pool.close()
        self.datastore.pool = _StatementCachingPool(
            db_name=self.datastore.pool.db_name, lock_timeout=lock_timeout
        )
        self.db = SQLiteDatabase(self.datastore)
        self.recorder = SQLiteApplicationRecorder(self.datastore)
        self.recorder.create_table()
        head, _, values = self.recorder.insert_events_statement.partition(" VALUES ")
        self._inserts = MultiRowInsert(head, values.count("?"), _ROWS)
        with self.datastore.transaction(commit=True) as c:
            for statement in _SIDE_TABLES:
                c.execute(statement)
        _upgrade_clock(self.datastore)
        self._stored_fps: set[bytes] = set()
        self._lock = threading.Lock()
        self._committer = None
        self._starting = threading.Lock()
        self.codec = Codec(resolve=self.schema_json)
        for _fp, _name, text in self.schemas():
            self._stored_fps.add(self.codec.add(Schema.from_json(text)).fingerprint)

    # -- writing -----------------------------------------------------------------------------

    def _append_now(self, events: Sequence[NewEvent], schemas: Iterable[Schema]) -> int:
        return self._commit(events, *self._begin(events, schemas))

    def _begin(
        self, events: Sequence[NewEvent], schemas: Iterable[Schema]
    ) -> tuple[ExitStack, int, dict[bytes, Schema]]:
        """Take the write lock, open a transaction and insert `events` and the new schemas in
        it; return the open transaction (for `_commit`), the last position, the new schemas."""
        new_schemas = self._new_schemas(events, schemas)
        now = time.time()
        now_us = time.time_ns() // 1000  # the clock: integer microseconds, as times are shown
        with _clashes(events), ExitStack() as transaction:
            transaction.enter_context(self._lock)
            c = transaction.enter_context(self.datastore.transaction(commit=True))
            if new_schemas:
                c.executemany(
                    "INSERT OR IGNORE INTO synchub_schemas VALUES (?,?,?,?)",
                    [(s.fingerprint, s.name, s.json, now) for s in new_schemas.values()],
                )
            if events:
                last = self._insert(c, events)
                c.execute(
                    "INSERT INTO synchub_clock VALUES (?, max(?, coalesce("
                    "(SELECT max(recorded_at) FROM synchub_clock), 0)))",
                    (last, now_us),
                )
            else:
                last = self._head(c)
            return transaction.pop_all(), last, new_schemas

    def _commit(
        self,
        events: Sequence[NewEvent],
        transaction: ExitStack,
        last: int,
        new_schemas: dict[bytes, Schema],
    ) -> int:
        """Commit what `_begin` inserted and release the write lock; return the last position."""
        with _clashes(events):
            transaction.close()
        self._stored_fps.update(new_schemas)
        return last

    def _insert(self, c: SQLiteCursor, events: Sequence[NewEvent]) -> int:
        """Insert `events` in order (multi-row INSERTs); return the last one's position."""
        self._inserts.run(c, events)
        return int(c.lastrowid)

    def _new_schemas(
        self, events: Sequence[NewEvent], schemas: Iterable[Schema]
    ) -> dict[bytes, Schema]:
        return new_schemas(self.codec, self._stored_fps, events, schemas)

    # -- reading -----------------------------------------------------------------------------

    def read(
        self,
        after: int = 0,
        upto: int | None = None,
        limit: int = 1000,
        types: Sequence[str] = (),
    ) -> list[StoredEvent]:
        with self.datastore.transaction(commit=False) as c:
            return self.read_in(c, after, upto, limit, types)

    @staticmethod
    def read_in(
        c: Cursor | SQLiteCursor,
        after: int = 0,
        upto: int | None = None,
        limit: int = 1000,
        types: Sequence[str] = (),
    ) -> list[StoredEvent]:
        """`read` inside a transaction the caller holds (e.g. a rebuild's final swap)."""
        sql = f"SELECT rowid, {_EVENT_COLUMNS} FROM stored_events WHERE rowid > ?"
        params: list[Any] = [after]
        if upto is not None:
            sql += " AND rowid <= ?"
            params.append(upto)
        if types:
            sql += f" AND topic IN ({','.join('?' * len(types))})"
            params.extend(types)
        params.append(limit)
        raw: Any = getattr(c, "sqlite_cursor", c)  # the library's wrapper, or sqlite3's cursor
        cursor = raw.connection.cursor()
        cursor.row_factory = None  # plain tuples: half the cost of sqlite3.Row per event
        cursor.execute(sql + " ORDER BY rowid LIMIT ?", params)
        return list(map(StoredEvent._make, cursor.fetchall()))

    def read_stream(
        self, stream: str, after_version: int = 0, upto_version: int | None = None
    ) -> list[StoredEvent]:
        sql = (
            "SELECT rowid, originator_version, topic, state FROM stored_events"
            " WHERE originator_id=? AND originator_version>?"
        )
        params: list[Any] = [stream, after_version]
        if upto_version is not None:
            sql += " AND originator_version<=?"
            params.append(upto_version)
        sql += " ORDER BY originator_version"
        with self.datastore.transaction(commit=False) as c:
            c.execute(sql, params)
            return [StoredEvent(r[0], stream, r[1], r[2], r[3]) for r in c.fetchall()]

    def last(self, stream: str) -> StoredEvent | None:
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                "SELECT rowid, originator_version, topic, state FROM stored_events"
                " WHERE originator_id=? ORDER BY originator_version DESC LIMIT 1",
                (stream,),
            )
            r = c.fetchone()
        return None if r is None else StoredEvent(r[0], stream, r[1], r[2], r[3])

    def heads(self, streams: Sequence[str]) -> dict[str, tuple[int, bytes]]:
        out: dict[str, tuple[int, bytes]] = {}
        with self.datastore.transaction(commit=False) as c:
            for i in range(0, len(streams), 500):
                chunk = list(streams[i : i + 500])
                marks = ",".join("?" * len(chunk))
                # SQLite takes a bare column from the row where the one max() was found
                c.execute(
                    "SELECT originator_id, max(originator_version),"
                    f" substr(state, {HEADER_LEN + 1}, 8) FROM stored_events"
                    f" WHERE originator_id IN ({marks}) GROUP BY originator_id",
                    chunk,
                )
                for stream, version, digest in c.fetchall():
                    out[stream] = (version, bytes(digest))
        return out

    def heads_by_prefix(self, prefix: str) -> dict[str, tuple[int, bytes]]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                "SELECT originator_id, max(originator_version),"
                f" substr(state, {HEADER_LEN + 1}, 8) FROM stored_events"
                " WHERE originator_id >= ? AND originator_id < ? GROUP BY originator_id",
                (prefix, prefix + "\U0010ffff"),
            )
            return {r[0]: (r[1], bytes(r[2])) for r in c.fetchall()}

    def head(self) -> int:
        with self.datastore.transaction(commit=False) as c:
            return self._head(c)

    @staticmethod
    def _head(c: SQLiteCursor) -> int:
        c.execute("SELECT max(rowid) FROM stored_events")
        return int(c.fetchone()[0] or 0)

    def position_at(self, when: dt.datetime) -> int:
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                "SELECT max(last_position) FROM synchub_clock WHERE recorded_at <= ?",
                (_us(when),),
            )
            return int(c.fetchone()[0] or 0)

    def time_of(self, position: int) -> dt.datetime | None:
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                "SELECT recorded_at FROM synchub_clock WHERE last_position >= ?"
                " ORDER BY last_position LIMIT 1",
                (position,),
            )
            r = c.fetchone()
        if r is None or position < 1:
            return None
        return _EPOCH + int(r[0]) * _MICROSECOND

    def schema_json(self, fingerprint: bytes) -> str | None:
        with self.datastore.transaction(commit=False) as c:
            c.execute("SELECT schema FROM synchub_schemas WHERE fingerprint=?", (fingerprint,))
            r = c.fetchone()
        return None if r is None else str(r[0])

    def schemas(self) -> list[tuple[str, str, str]]:
        with self.datastore.transaction(commit=False) as c:
            c.execute("SELECT fingerprint, name, schema FROM synchub_schemas ORDER BY rowid")
            return [(bytes(r[0]).hex(), r[1], r[2]) for r in c.fetchall()]

    def appends(self) -> list[tuple[int, int]]:
        with self.datastore.transaction(commit=False) as c:
            c.execute("SELECT last_position, recorded_at FROM synchub_clock ORDER BY last_position")
            return [(int(p), int(t)) for p, t in c.fetchall()]

    def close(self) -> None:
        self._stop_committing()
        self.datastore.close()


@contextmanager
def _clashes(events: Sequence[NewEvent]) -> Iterator[None]:
    """Turn the library's IntegrityError (a version already taken) into ConcurrencyError."""
    try:
        yield
    except IntegrityError as e:
        streams = sorted({f"{ev.stream}@{ev.version}" for ev in events})[:3]
        raise ConcurrencyError(
            f"another writer already appended to {', '.join(streams)}...: reload the "
            f"stream heads and retry ({e})"
        ) from e


def _us(when: dt.datetime) -> int:
    """`when` as integer microseconds since the epoch, exactly (a naive time is UTC)."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return (when - _EPOCH) // _MICROSECOND


def _upgrade_clock(datastore: SQLiteDatastore) -> None:
    """Convert the clock of a store written by an older synchub (`recorded_at` REAL seconds)
    to integer microseconds, once. Each time becomes the microsecond that synchub showed for
    it (`datetime.fromtimestamp`), so a time printed before the upgrade still finds the same
    position. The transaction's first statement writes, so it holds the write lock before it
    looks: of two processes opening the old store at once, the second finds it converted."""
    with datastore.transaction(commit=False) as c:
        c.execute("SELECT type FROM pragma_table_info('synchub_clock') WHERE name='recorded_at'")
        if str(c.fetchone()[0]).upper() == "INTEGER":
            return
    with datastore.transaction(commit=True) as c:
        c.execute("DELETE FROM synchub_clock WHERE 0")  # takes the write lock, changes nothing
        c.execute("SELECT type FROM pragma_table_info('synchub_clock') WHERE name='recorded_at'")
        if str(c.fetchone()[0]).upper() == "INTEGER":
            return  # another process converted it meanwhile
        c.sqlite_cursor.connection.create_function(
            "synchub_shown_us",
            1,
            lambda seconds: _us(dt.datetime.fromtimestamp(seconds, dt.UTC)),
            deterministic=True,
        )
        c.execute("ALTER TABLE synchub_clock RENAME TO synchub_clock_old")
        c.execute("DROP INDEX synchub_clock_time")
        for statement in _SIDE_TABLES[1:]:
            c.execute(statement)
        c.execute(
            "INSERT INTO synchub_clock SELECT last_position, synchub_shown_us(recorded_at)"
            " FROM synchub_clock_old"
        )
        c.execute("DROP TABLE synchub_clock_old")
