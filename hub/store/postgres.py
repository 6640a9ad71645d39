"""The event store on PostgreSQL (psycopg 3, a psycopg_pool connection pool), behind the same
`EventStore` interface and contract suite as the SQLite one.

Tables (created when the store opens, if missing):

- `synchub_events (position, stream, version, type, payload)`: the log. `position` is the
  global order, gap-free: appends take a transaction-scoped advisory lock, read the head and
  number their rows after it, so no two appends interleave and a rolled-back one leaves no
  hole (a sequence would). `(stream, version)` is unique: a writer that lost a race gets
  ConcurrencyError with nothing stored.
- `synchub_schemas (fingerprint, name, json, stored_at)`: every writer schema once.
- `synchub_clock (last_position, recorded_at)`: per append, its last position and its time in
  integer microseconds, non-decreasing (`position_at`, `time_of`).
- `synchub_tracking (name, position)`: positions tracked by name (the projections').

Rows go in with COPY. `append_async` inserts and commits on one background thread in call
order, like the SQLite store. The projections' tables live in the same database (`db`,
hub.store.postgres_db). Text columns sort bytewise (COLLATE "C"), as SQLite's do, so every
order and key range is the same on both backends.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterable, Sequence
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg_pool import ConnectionPool

from hub.avro import HEADER_LEN, Codec, Schema
from hub.config import redact_url
from hub.errors import ConcurrencyError, StoreError
from hub.store.base import CommitThread, Cursor, EventStore, NewEvent, StoredEvent, new_schemas
from hub.store.leases import LEASES_TABLE
from hub.store.postgres_db import APPEND_LOCK, PostgresDatabase, prepare_connection, raw_cursor

__all__ = ["PostgresEventStore", "postgres_store_exists"]
_BIG = 2**63 - 1
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICROSECOND = dt.timedelta(microseconds=1)

_DDL = (
    "CREATE TABLE IF NOT EXISTS synchub_events ("
    ' position bigint PRIMARY KEY, stream text COLLATE "C" NOT NULL, version integer NOT NULL,'
    ' type text COLLATE "C" NOT NULL, payload bytea NOT NULL, UNIQUE (stream, version))',
    "CREATE INDEX IF NOT EXISTS synchub_events_type ON synchub_events (type, position)",
    "CREATE TABLE IF NOT EXISTS synchub_schemas ("
    " fingerprint bytea PRIMARY KEY, name text NOT NULL, json text NOT NULL,"
    " stored_at double precision NOT NULL)",
    "CREATE TABLE IF NOT EXISTS synchub_clock ("
    " last_position bigint PRIMARY KEY, recorded_at bigint NOT NULL)",
    "CREATE INDEX IF NOT EXISTS synchub_clock_time ON synchub_clock (recorded_at)",
    "CREATE TABLE IF NOT EXISTS synchub_tracking (name text PRIMARY KEY, position bigint NOT NULL)",
)
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    _DDL,  # 1: the log, its schemas, its clock, tracked positions
    (LEASES_TABLE.format(text='text COLLATE "C"', int="bigint"),),  # 2: leases (hub.store.leases)
)
"""The store's tables, version by version: a database at version N gets N+1… when it opens
(`synchub migrate` shows it), each step in the transaction that records it."""
_COLUMNS = "position, stream, version, type, payload"
_COLUMN_TYPES = ["int8", "text", "int4", "text", "bytea"]


class PostgresEventStore(CommitThread, EventStore):
    """The event log in a PostgreSQL database (`url`: a `postgresql://` connection string)."""

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 8) -> None:
        self.url = url
        self.location = redact_url(url)
        _connect(url).close()  # a server that cannot be reached says why now
        self.pool = ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            open=True,
            kwargs={"autocommit": False},
            configure=prepare_connection,
        )
        self.db = PostgresDatabase(self.pool, url)
        self.codec = Codec(resolve=self.schema_json)  # a schema another process stored
        self._lock = threading.Lock()
        self._committer = None
        self._starting = threading.Lock()
        with self.db.transaction(commit=True) as c:
            c.execute("SELECT pg_advisory_xact_lock(%s)", (APPEND_LOCK,))  # one creator
            self.schema_versions = _upgrade(c)
            c.execute("SELECT json FROM synchub_schemas ORDER BY stored_at")
            rows = c.fetchall()
        self._stored_fps: set[bytes] = {
            self.codec.add(Schema.from_json(text)).fingerprint for (text,) in rows
        }

    # -- appending -------------------------------------------------------------------------------

    def _append_now(self, events: Sequence[NewEvent], schemas: Iterable[Schema]) -> int:
        with self._lock:
            new = new_schemas(self.codec, self._stored_fps, events, schemas)
            now = dt.datetime.now(dt.UTC)
            try:
                with self.db.transaction(commit=True) as c:
                    self.db.lock(c)
                    if new:
                        c.executemany(
                            "INSERT INTO synchub_schemas VALUES (%s, %s, %s, %s)"
                            " ON CONFLICT (fingerprint) DO NOTHING",
                            [
                                (s.fingerprint, s.name, s.json, now.timestamp())
                                for s in new.values()
                            ],
                        )
                    last = self._head(c)
                    if events:
                        start = last
                        with raw_cursor(c).copy(
                            f"COPY synchub_events ({_COLUMNS}) FROM STDIN (FORMAT BINARY)"
                        ) as copy:
                            # binary: half the CPU of the text format per row (measured
                            # 1.1 vs 2.0 µs), time the ingest thread has meanwhile
                            copy.set_types(_COLUMN_TYPES)
                            for i, e in enumerate(events, start + 1):
                                copy.write_row((i, e.stream, e.version, e.type, e.payload))
                        last = start + len(events)
                        c.execute(
                            "INSERT INTO synchub_clock VALUES (%s, greatest(%s, coalesce("
                            "(SELECT max(recorded_at) FROM synchub_clock), 0)))",
                            (last, _us(now)),
                        )
            except pg_errors.UniqueViolation as e:
                streams = sorted({f"{ev.stream}@{ev.version}" for ev in events})[:3]
                raise ConcurrencyError(
                    f"another writer already appended to {', '.join(streams)}...: reload the "
                    f"stream heads and retry ({e.diag.message_primary})"
                ) from e
            self._stored_fps.update(new)
            return last

    # -- reading ---------------------------------------------------------------------------------

    def read(
        self,
        after: int = 0,
        upto: int | None = None,
        limit: int = 1000,
        types: Sequence[str] = (),
    ) -> list[StoredEvent]:
        sql = f"SELECT {_COLUMNS} FROM synchub_events WHERE position > %s"
        params: list[Any] = [after]
        if upto is not None:
            sql += " AND position <= %s"
            params.append(upto)
        if types:
            sql += " AND type = ANY(%s)"
            params.append(list(types))
        sql += " ORDER BY position LIMIT %s"
        params.append(limit)
        return self._events(sql, params)

    def read_in(
        self, c: Cursor, after: int = 0, upto: int | None = None, limit: int = 1000
    ) -> list[StoredEvent]:
        c.execute(
            f"SELECT {_COLUMNS} FROM synchub_events WHERE position > %s AND position <= %s"
            " ORDER BY position LIMIT %s",
            (after, _BIG if upto is None else upto, limit),
        )
        return [
            StoredEvent(int(p), s, int(v), t, bytes(payload))
            for p, s, v, t, payload in c.fetchall()
        ]

    def read_stream(
        self, stream: str, after_version: int = 0, upto_version: int | None = None
    ) -> list[StoredEvent]:
        sql = f"SELECT {_COLUMNS} FROM synchub_events WHERE stream = %s AND version > %s"
        params: list[Any] = [stream, after_version]
        if upto_version is not None:
            sql += " AND version <= %s"
            params.append(upto_version)
        return self._events(sql + " ORDER BY version", params)

    def last(self, stream: str) -> StoredEvent | None:
        found = self._events(
            f"SELECT {_COLUMNS} FROM synchub_events WHERE stream = %s"
            " ORDER BY version DESC LIMIT 1",
            [stream],
        )
        return found[0] if found else None

    def heads(self, streams: Sequence[str]) -> dict[str, tuple[int, bytes]]:
        if not streams:
            return {}
        joined = "\n".join(streams)
        if joined.count("\n") == len(streams) - 1:  # no name has a newline: one text parameter
            names = "unnest(string_to_array(%s, E'\\n'))"
            param: Any = joined  # (psycopg dumps a list element by element in Python)
        else:
            names, param = "unnest(%s::text[])", list(streams)
        # one index probe per stream (a backward scan of (stream, version), LIMIT 1): with
        # `stream = ANY(...)` the planner chose a sequential scan of the whole log on small
        # tables (measured: 15 ms a batch at 50k events, growing with the log)
        return self._heads(
            "SELECT s.stream, h.version,"
            f" substring(h.payload FROM {HEADER_LEN + 1} FOR 8) FROM {names} AS s(stream)"
            " CROSS JOIN LATERAL (SELECT e.version, e.payload FROM synchub_events e"
            ' WHERE e.stream = s.stream COLLATE "C" ORDER BY e.version DESC LIMIT 1) h',
            [param],
        )

    def heads_by_prefix(self, prefix: str) -> dict[str, tuple[int, bytes]]:
        # a key range of the (stream, version) index (bytewise order: COLLATE "C"), not a
        # scan of the whole log; `left()` kept for the exact prefix
        if not prefix or ord(prefix[-1]) == 0x10FFFF:  # (no code point after it)
            where, params = "left(stream, %s) = %s", [len(prefix), prefix]
        else:
            where = "stream >= %s AND stream < %s AND left(stream, %s) = %s"
            params = [prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1), len(prefix), prefix]
        return self._heads(
            "SELECT DISTINCT ON (stream) stream, version,"
            f" substring(payload FROM {HEADER_LEN + 1} FOR 8) FROM synchub_events"
            f" WHERE {where} ORDER BY stream, version DESC",
            params,
        )

    def head(self) -> int:
        with self.db.transaction(commit=False) as c:
            return self._head(c)

    @staticmethod
    def _head(c: Cursor) -> int:
        c.execute("SELECT coalesce(max(position), 0) FROM synchub_events")
        return int(c.fetchone()[0])

    def position_at(self, when: dt.datetime) -> int:
        with self.db.transaction(commit=False) as c:
            c.execute(
                "SELECT coalesce(max(last_position), 0) FROM synchub_clock WHERE recorded_at <= %s",
                (_us(when),),
            )
            return int(c.fetchone()[0])

    def time_of(self, position: int) -> dt.datetime | None:
        if position < 1:
            return None
        with self.db.transaction(commit=False) as c:
            c.execute(
                "SELECT recorded_at FROM synchub_clock WHERE last_position >= %s"
                " ORDER BY last_position LIMIT 1",
                (position,),
            )
            row = c.fetchone()
        return None if row is None else _EPOCH + int(row[0]) * _MICROSECOND

    def schema_json(self, fingerprint: bytes) -> str | None:
        with self.db.transaction(commit=False) as c:
            c.execute("SELECT json FROM synchub_schemas WHERE fingerprint = %s", (fingerprint,))
            row = c.fetchone()
        return None if row is None else str(row[0])

    def schemas(self) -> list[tuple[str, str, str]]:
        with self.db.transaction(commit=False) as c:
            c.execute("SELECT fingerprint, name, json FROM synchub_schemas ORDER BY stored_at")
            return [(bytes(fp).hex(), name, text) for fp, name, text in c.fetchall()]

    def appends(self) -> list[tuple[int, int]]:
        with self.db.transaction(commit=False) as c:
            c.execute("SELECT last_position, recorded_at FROM synchub_clock ORDER BY last_position")
            return [(int(p), int(t)) for p, t in c.fetchall()]

    def import_log(
        self,
        pages: Iterable[list[StoredEvent]],
        schemas: list[tuple[str, str, str]],
        appends: list[tuple[int, int]],
    ) -> int:
        """Copy another store's log into this empty one as it is: the events with their
        positions, the schemas, the clock (so times map to the same positions). One
        transaction: all or nothing. Returns the events copied."""
        copied = 0
        with self._lock, self.db.transaction(commit=True) as c:
            self.db.lock(c)
            if self._head(c) != 0:
                raise ConcurrencyError(
                    "the PostgreSQL store already holds events: migrate into an empty database"
                )
            c.executemany(
                "INSERT INTO synchub_schemas VALUES (%s, %s, %s, %s)"
                " ON CONFLICT (fingerprint) DO NOTHING",
                [(bytes.fromhex(fp), name, text, i) for i, (fp, name, text) in enumerate(schemas)],
            )
            with raw_cursor(c).copy(f"COPY synchub_events ({_COLUMNS}) FROM STDIN") as copy:
                for page in pages:
                    for e in page:
                        copy.write_row(e)
                    copied += len(page)
            with raw_cursor(c).copy(
                "COPY synchub_clock (last_position, recorded_at) FROM STDIN"
            ) as copy:
                for row in appends:
                    copy.write_row(row)
        for _fp, _name, text in schemas:
            self._stored_fps.add(self.codec.add(Schema.from_json(text)).fingerprint)
        return copied

    def close(self) -> None:
        self._stop_committing()
        self.pool.close()

    def _events(self, sql: str, params: list[Any]) -> list[StoredEvent]:
        with self.db.transaction(commit=False) as c:
            c.execute(sql, params)
            return [
                StoredEvent(int(p), s, int(v), t, bytes(payload))
                for p, s, v, t, payload in c.fetchall()
            ]

    def _heads(self, sql: str, params: list[Any]) -> dict[str, tuple[int, bytes]]:
        with self.db.transaction(commit=False) as c:
            c.execute(sql, params)
            return {s: (int(v), bytes(d)) for s, v, d in c.fetchall()}


def _us(when: dt.datetime) -> int:
    """`when` as integer microseconds since the epoch, exactly (a naive time is UTC)."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return (when - _EPOCH) // _MICROSECOND


def postgres_store_exists(url: str) -> bool:
    """Whether the database at `url` holds a synchub store (its events table)."""
    with _connect(url) as conn:
        row = conn.execute("SELECT to_regclass('synchub_events') IS NOT NULL").fetchone()
    return bool(row and row[0])


def _connect(url: str) -> psycopg.Connection[Any]:
    """A connection, or StoreError saying why there is none (the pool would retry for 30 s,
    then say only that it timed out)."""
    try:
        return psycopg.connect(url, connect_timeout=10)
    except psycopg.Error as e:
        reason = redact_url(" ".join(str(e).split()) or repr(e))
        raise StoreError(
            f"cannot connect to the PostgreSQL store at {redact_url(url)}: {reason}. Check that"
            " the server runs and that store.url names its host, port, user and database (a"
            " password from the environment: ${PGPASSWORD})"
        ) from None


def _upgrade(c: Cursor) -> tuple[int, int]:
    """Bring the store's tables to the newest version (in the caller's transaction, under the
    append lock); (version found, version now). A store of an older synchub that predates the
    version record is at version 1 (its tables are the first step's)."""
    c.execute("CREATE TABLE IF NOT EXISTS synchub_meta (key text PRIMARY KEY, value text NOT NULL)")
    c.execute("SELECT value FROM synchub_meta WHERE key = 'schema_version'")
    row = c.fetchone()
    if row is not None:
        found = int(row[0])
    else:
        c.execute("SELECT to_regclass('synchub_events') IS NOT NULL")
        found = 1 if c.fetchone()[0] else 0
    newest = len(MIGRATIONS)
    if found > newest:
        raise StoreError(
            f"the PostgreSQL store is at schema version {found}, made by a newer synchub; this"
            f" one knows versions up to {newest}: upgrade synchub on this machine"
        )
    for step in MIGRATIONS[found:]:
        for statement in step:
            c.execute(statement)
    c.execute(
        "INSERT INTO synchub_meta VALUES ('schema_version', %s)"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (str(newest),),
    )
    return found, newest
