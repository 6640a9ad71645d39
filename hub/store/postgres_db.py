"""The store's PostgreSQL database behind hub's own `Database` interface (hub.store.base).

Statements above the store use `?` parameters (the DB-API's qmark style, SQLite's); psycopg
takes `%s`. A cursor of this module translates a statement that has `?` once (cached), and
passes every other statement (the store's own, written for psycopg) as it is. Python's
booleans are written as integers, as SQLite stores them (the projections' flag columns are
integers on both backends).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Generator, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, cast

import psycopg
from psycopg.adapt import Dumper
from psycopg_pool import ConnectionPool, PoolTimeout

from hub.config import redact_url
from hub.errors import StoreError, StoreUnavailable
from hub.store.base import Cursor, Database, Dialect, ScratchSession

__all__ = ["APPEND_LOCK", "POSTGRES", "PostgresDatabase", "prepare_connection", "raw_cursor"]

CHUNKED_ROWS = psycopg.pq.version() >= 170000
"""libpq sends a query's rows in chunks as the server makes them (`Cursor.stream(size=)`)."""
APPEND_LOCK = 0x53594E43
"""The transaction-scoped advisory lock appends (and a rebuild's swap) take, one at a time."""

POSTGRES = Dialect(
    name="postgresql",
    upsert="INSERT INTO",
    on_conflict=True,
    round_trips=True,
    analyze="ANALYZE {table}",
    now_us="(extract(epoch FROM clock_timestamp()) * 1000000)::bigint",
    clustered="",
    types=(
        ("INTEGER", "BIGINT"),
        ("REAL", "DOUBLE PRECISION"),
        ("BLOB", "BYTEA"),
        ("TEXT", 'TEXT COLLATE "C"'),  # bytewise order, as SQLite's
    ),
    index_columns=(
        "SELECT i.relname, a.attname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid"
        " JOIN pg_class t ON t.oid = x.indrelid JOIN pg_attribute a ON a.attrelid = t.oid"
        " AND a.attnum = ANY(x.indkey) WHERE t.relname = ? AND NOT x.indisunique"
        " AND pg_table_is_visible(t.oid)"
        " ORDER BY i.relname, array_position(x.indkey, a.attnum)"
    ),
    table_columns=(
        "SELECT column_name FROM information_schema.columns WHERE table_name = ?"
        " AND table_schema = current_schema() ORDER BY ordinal_position"
    ),
    tables_like=(
        "SELECT tablename FROM pg_tables WHERE tablename LIKE ? AND schemaname = current_schema()"
    ),
)


@functools.lru_cache(maxsize=8192)
def _numbered(statement: str) -> str:
    """`statement` with its `?` parameters numbered as PostgreSQL's own `$1, $2, …`, for a
    psycopg RawCursor: psycopg parses `%s` statements with a regular expression on every call
    for long ones (its cache keeps short ones), measured 40 ms for a 32k-parameter upsert,
    half a catch-up's time."""
    parts = statement.split("?")
    return "".join(f"{part}${i}" for i, part in enumerate(parts[:-1], 1)) + parts[-1]


class _BoolAsInt(Dumper):
    """True/False as the integers 1/0 (SQLite's booleans)."""

    oid = psycopg.adapters.types["int8"].oid

    def dump(self, obj: Any) -> bytes:
        return b"1" if obj else b"0"


def prepare_connection(conn: psycopg.Connection[Any]) -> None:
    """What every connection of the store needs: booleans written as integers."""
    conn.adapters.register_dumper(bool, _BoolAsInt)


class QmarkCursor:
    """A psycopg cursor that takes `?` parameters (hub.store.base.Cursor): such a statement
    goes, numbered, through a RawCursor of the same connection; one without `?` (the store's
    own, written for psycopg) through the plain cursor."""

    __slots__ = ("_last", "_numbered", "_streaming", "raw")

    def __init__(self, raw: psycopg.Cursor[Any]) -> None:
        self.raw = raw
        self._numbered: psycopg.RawCursor[Any] | None = None
        self._last: psycopg.Cursor[Any] = raw
        self._streaming = False
        """A chunked stream is open: the connection is busy (a query would wait forever)."""

    def _free(self) -> None:
        if self._streaming:
            raise StoreError(
                "a query on a store connection while a streamed read on it is still open "
                "(hub.store.base.stream_rows): take the stream's remaining rows first"
            )

    def _cursor(self) -> psycopg.RawCursor[Any]:
        if self._numbered is None:
            self._numbered = psycopg.RawCursor(self.raw.connection)
        return self._numbered

    def execute(self, statement: str, parameters: Sequence[Any] = (), /) -> QmarkCursor:
        self._free()
        if "?" in statement:
            cur: psycopg.Cursor[Any] = self._cursor()
            cur.execute(_numbered(statement), parameters)
        else:
            cur = self.raw
            cur.execute(statement, parameters or None)
        self._last = cur
        return self

    def executemany(self, statement: str, parameters: Iterable[Sequence[Any]], /) -> None:
        self._free()
        if "?" in statement:
            self._cursor().executemany(_numbered(statement), parameters)
        else:
            self.raw.executemany(statement, parameters)

    def fetch_binary(self, statement: str, parameters: Sequence[Any] = (), /) -> list[Any]:
        """Every row of a read query (`?` parameters), its results in binary: integers and
        bytea not parsed from text (the change feed's rows: ≈ 0.6 µs a row less, measured)."""
        self._free()
        cur = self._cursor()
        cur.execute(_numbered(statement), parameters, binary=True)
        self._last = cur
        return cur.fetchall()

    def stream_binary(
        self, statement: str, parameters: Sequence[Any], size: int, /
    ) -> Generator[list[Any], None, None]:
        """hub.store.base.stream_rows: one query, its results in binary, on a cursor of its
        own, in lists of up to `size` rows. With libpq 17 or later the server sends them in
        chunks of `size` as it makes them (psycopg's chunked-rows stream: the server's work
        overlaps the client's: the publisher's read 0.06 s per 100k changes less), and the
        connection is busy until the last list; before 17 libpq holds the whole result and
        the rows are made into Python objects `size` at a time."""
        self._free()
        with psycopg.RawCursor(self.raw.connection) as cur:
            if CHUNKED_ROWS:
                rows = cur.stream(_numbered(statement), parameters, binary=True, size=size)
                self._streaming = True
                try:
                    while chunk := list(itertools.islice(rows, size)):
                        yield chunk
                finally:
                    self._streaming = False
                return
            cur.execute(_numbered(statement), parameters, binary=True)
            while chunk := cur.fetchmany(size):
                yield chunk

    def fetchone(self) -> Any:
        return self._last.fetchone()

    def fetchall(self) -> list[Any]:
        return self._last.fetchall()

    def __iter__(self) -> Iterator[Any]:
        return iter(self._last)

    @property
    def rowcount(self) -> int:
        return self._last.rowcount

    def close(self) -> None:
        if self._numbered is not None:
            self._numbered.close()


def raw_cursor(c: Cursor) -> psycopg.Cursor[Any]:
    """The psycopg cursor under one of ours (for COPY)."""
    return c.raw if isinstance(c, QmarkCursor) else cast("psycopg.Cursor[Any]", c)


_SERVER_GONE = ("57P01", "57P02", "57P03")  # admin/crash shutdown, cannot connect now


def _unavailable(e: Exception) -> bool:
    """Whether `e` says the server cannot be reached (not that a statement failed): no
    connection from the pool, a connection lost (no SQLSTATE, or class 08), or the server
    shutting down or starting."""
    if isinstance(e, PoolTimeout):
        return True
    state = getattr(e, "sqlstate", None)
    return state is None or state.startswith("08") or state in _SERVER_GONE


def _quote(name: str) -> str:
    """An SQL identifier, quoted."""
    return '"' + name.replace('"', '""') + '"'


class PostgresDatabase(Database):
    """Transactions, the write lock and tracked positions on the store's PostgreSQL."""

    dialect = POSTGRES

    def __init__(self, pool: ConnectionPool, url: str) -> None:
        self.pool = pool
        self.url = url

    @contextmanager
    def transaction(self, *, commit: bool) -> Iterator[Cursor]:
        """A pooled connection's transaction. The server gone (restarting, cut off) raises
        StoreUnavailable, with nothing done; the pool replaces the broken connection."""
        try:
            with self.pool.connection() as conn:
                try:
                    with conn.cursor() as c:
                        q = QmarkCursor(c)
                        try:
                            yield q
                        finally:
                            q.close()
                except BaseException:
                    if not conn.broken:
                        conn.rollback()
                    raise
                if commit:
                    conn.commit()
                else:
                    conn.rollback()
        except (psycopg.OperationalError, PoolTimeout) as e:
            if not _unavailable(e):
                raise
            raise StoreUnavailable(
                f"the PostgreSQL store at {redact_url(self.url)} cannot be reached: "
                f"{redact_url(' '.join(str(e).split()))}"
            ) from e

    def lock(self, c: Cursor) -> None:
        c.execute("SELECT pg_advisory_xact_lock(%s)", (APPEND_LOCK,))

    def tracked(self, name: str) -> int:
        with self.transaction(commit=False) as c:
            c.execute("SELECT position FROM synchub_tracking WHERE name = %s", (name,))
            row = c.fetchone()
        return int(row[0]) if row is not None else 0

    def tracked_in(self, c: Cursor, name: str) -> int:
        c.execute("SELECT position FROM synchub_tracking WHERE name = %s", (name,))
        row = c.fetchone()
        return int(row[0]) if row is not None else 0

    def claim(self, c: Cursor, name: str) -> None:
        # the two-key advisory locks are apart from APPEND_LOCK's one-key space
        c.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (APPEND_LOCK, name))

    def track(self, c: Cursor, name: str, position: int) -> None:
        c.execute(
            "INSERT INTO synchub_tracking VALUES (%s, %s) ON CONFLICT (name) DO UPDATE"
            " SET position = excluded.position WHERE synchub_tracking.position < excluded.position",
            (name, position),
        )

    @contextmanager
    def views_kept(self, c: Cursor) -> Iterator[None]:
        c.execute(
            "SELECT c.relname, pg_get_viewdef(c.oid), obj_description(c.oid, 'pg_class')"
            " FROM pg_class c WHERE c.relkind = 'v' AND pg_table_is_visible(c.oid)"
            " AND obj_description(c.oid, 'pg_class') LIKE 'synchub%'"
        )
        views = c.fetchall()
        for name, _definition, _comment in views:
            c.execute(f"DROP VIEW {_quote(name)}")
        yield
        roles = self._read_roles(c)
        for name, definition, comment in views:
            c.execute(f"CREATE VIEW {_quote(name)} AS {definition}")
            c.execute(
                f"COMMENT ON VIEW {_quote(name)} IS '{comment.replace(chr(39), chr(39) * 2)}'"
            )
            for role in roles:
                c.execute(f"GRANT SELECT ON {_quote(name)} TO {_quote(role)}")

    def read_roles(self) -> list[str]:
        with self.transaction(commit=False) as c:
            return self._read_roles(c)

    @staticmethod
    def _read_roles(c: Cursor) -> list[str]:
        c.execute("SELECT value FROM synchub_meta WHERE key = 'read_roles'")
        row = c.fetchone()
        return [r for r in str(row[0]).split(",") if r] if row is not None else []

    def add_read_role(self, role: str) -> bool:
        """Let `role` read synchub's views (and nothing else): made (NOLOGIN) if it does not
        exist, USAGE on the schema, remembered so every remade view is granted to it; whether
        the role was made."""
        with self.transaction(commit=True) as c:
            c.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
            made = c.fetchone() is None
            if made:
                c.execute(f"CREATE ROLE {_quote(role)} NOLOGIN")
            c.execute(f"GRANT USAGE ON SCHEMA {_quote(self._schema(c))} TO {_quote(role)}")
            roles = sorted({*self._read_roles(c), role})
            c.execute(
                "INSERT INTO synchub_meta VALUES ('read_roles', %s)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (",".join(roles),),
            )
        return made

    @staticmethod
    def _schema(c: Cursor) -> str:
        c.execute("SELECT current_schema()")
        return str(c.fetchone()[0])

    @contextmanager
    def scratch_session(self) -> Iterator[ScratchSession]:
        conn = psycopg.connect(self.url, autocommit=True)
        prepare_connection(conn)
        try:
            conn.execute("SET synchronous_commit = off")
            yield _Scratch(conn)
        finally:
            conn.close()


class _Scratch:
    isolated_reads = True

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    def cursor(self) -> Cursor:
        return QmarkCursor(self.conn.cursor())

    @contextmanager
    def transaction(self) -> Iterator[Cursor]:
        with self.conn.transaction(), self.conn.cursor() as c:
            yield QmarkCursor(c)
