"""The event store interface: an append-only log with one global, gap-free order.

Contract (every backend passes `hub.contracts.event_store.EventStoreContract`):

- `append` is atomic: all events and all new schemas are stored, or none. Each event names its
  stream and the version it takes in that stream (previous + 1); a version that is already taken
  raises ConcurrencyError and nothing is stored.
- Positions start at 1, increase by one per event, in append order, and never change.
- Every payload is Avro single-object encoded; the schema of every stored payload is in the
  store (`schema_json`), so every event decodes forever.
- Each append records the wall-clock time it happened (non-decreasing), so time maps to a
  position (`position_at`). The time is kept in whole microseconds, the precision of the
  `datetime` that `time_of` returns and a printed ISO time parses to, so
  `position_at(time_of(p)) >= p`.
"""

from __future__ import annotations

import datetime as dt
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from hub.avro import HEADER_LEN, Codec, Schema
from hub.errors import StoreError


class NewEvent(NamedTuple):
    """An event to append: `version` is its place in `stream` (1 for a new stream).

    A tuple in the column order of the store's INSERT, so a list of them is its parameters."""

    stream: str
    version: int
    type: str
    payload: bytes


class StoredEvent(NamedTuple):
    """An event as stored: `position` is its place in the global order.

    A tuple in the column order of the store's SELECT, so a row becomes one without copying
    each field (`StoredEvent._make`: half the cost of a frozen dataclass per event, measured).
    """

    position: int
    stream: str
    version: int
    type: str
    payload: bytes

    @property
    def digest(self) -> bytes:
        """The 8 bytes after the single-object header: a content digest in hub envelopes."""
        return self.payload[HEADER_LEN : HEADER_LEN + 8]


class Cursor(Protocol):
    """A cursor inside one transaction: the DB-API 2 subset synchub uses, `?` parameters.
    Rows are tuples (indexable by column position)."""

    def execute(self, statement: str, parameters: Sequence[Any] = ..., /) -> Any: ...

    def executemany(self, statement: str, parameters: Iterable[Sequence[Any]], /) -> Any: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]:
        """The rows of the last query, streamed (a whole table never sits in memory)."""
        ...


def fetch_rows(c: Cursor, statement: str, parameters: Sequence[Any] = ()) -> list[Any]:
    """Every row of a read query, in the driver's fastest form: binary results where the
    cursor has them (PostgreSQL: `fetch_binary`), else as `execute` and `fetchall` give them."""
    binary = getattr(c, "fetch_binary", None)
    if binary is not None:
        rows: list[Any] = binary(statement, parameters)
        return rows
    c.execute(statement, parameters)
    return c.fetchall()


def stream_rows(
    c: Cursor, statement: str, parameters: Sequence[Any], size: int
) -> Generator[list[Any], None, None]:
    """The rows of a read query in lists of up to `size`, from one query (one round trip to a
    server), made into Python objects a list at a time (they stay in the CPU's caches while
    the caller works through them). The query runs on a cursor of its own in `c`'s
    transaction; `c` may run other queries only once the last list is taken (PostgreSQL sends
    the rows as its server makes them: the connection is busy until then, and a query on `c`
    meanwhile raises StoreError — `list()` the rest first)."""
    stream = getattr(c, "stream_binary", None)
    if stream is not None:
        yield from stream(statement, parameters, size)
        return
    # sqlite3's cursor (or the library's, around it): a cursor of the same connection,
    # rows as plain tuples (the protocol's, and cheaper than sqlite3.Row)
    raw: Any = getattr(c, "sqlite_cursor", c)
    own = raw.connection.cursor()
    own.row_factory = None
    try:
        own.execute(statement, parameters)
        while rows := own.fetchmany(size):
            yield rows
    finally:
        own.close()


@dataclass(frozen=True, slots=True)
class Dialect:
    """The SQL that differs per database, in one place (projections build statements from it).

    Statements everywhere above the store use `?` parameters; a backend whose driver wants
    another style translates them in its cursors."""

    name: str
    upsert: str
    """The statement head that inserts a row, before the table's name; with `on_conflict`
    the statement ends with an ON CONFLICT clause that replaces the row with its key
    (`upsert_statement`)."""
    clustered: str
    """The suffix of CREATE TABLE that stores rows in primary-key order."""
    index_columns: str
    """A query with one parameter, a table's name: (index name, column name) of each of its
    indexes, the columns of an index in their order."""
    table_columns: str
    """A query with one parameter, a table's name: the name of each of its columns, in order
    (no rows when there is no such table)."""
    tables_like: str
    """A query with one parameter, a LIKE pattern with `\\` as its escape character: the
    names of the tables that match it."""
    on_conflict: bool = False
    """Whether an upsert needs `ON CONFLICT (key) DO UPDATE` (PostgreSQL) rather than the head
    alone (SQLite's INSERT OR REPLACE)."""
    round_trips: bool = False
    """Whether every query costs a round trip to a server (PostgreSQL), not a library call
    (SQLite): then reading many keys once beats asking for each (RowCache.know_all)."""
    now_us: str = "0"
    """An SQL expression: the database's clock now, in integer microseconds since the epoch."""
    analyze: str = ""
    """A statement (with `{table}`) refreshing a table's planner statistics after bulk writes
    (PostgreSQL's ANALYZE); empty: none is needed (SQLite's planner has no statistics unless
    asked to, and the projections' queries are written for its rules)."""
    types: tuple[tuple[str, str], ...] = ()
    """Column types as the projections write them (SQLite's: INTEGER, TEXT, REAL, BLOB) and
    this database's type for each, e.g. ("INTEGER", "BIGINT")."""

    def column(self, ddl: str) -> str:
        """A column definition (`name TYPE constraints`) in this database's types."""
        name, _, rest = ddl.partition(" ")
        kind, _, constraints = rest.partition(" ")
        for ours, theirs in self.types:
            if kind == ours:
                kind = theirs
                break
        return " ".join(p for p in (name, kind, constraints) if p)

    def upsert_statement(
        self, table: str, columns: Sequence[str], key: Sequence[str]
    ) -> tuple[str, str]:
        """(head up to VALUES, tail after the rows) of a statement that inserts rows of
        `columns` into `table`, each replacing the row with the same `key`."""
        head = f"{self.upsert} {table} ({', '.join(columns)})"
        if not self.on_conflict:
            return head, ""
        rest = [c for c in columns if c not in key]
        action = (
            "DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in rest)
            if rest
            else "DO NOTHING"
        )
        return head, f" ON CONFLICT ({', '.join(key)}) {action}"


class ScratchSession(Protocol):
    """A connection for scratch work (Database.scratch_session)."""

    isolated_reads: bool
    """Whether a read on this session sees what other sessions committed without waiting for
    their open transactions (SQLite in WAL mode, PostgreSQL); if not, a reader must wait until
    no other session is writing."""

    def cursor(self) -> Cursor:
        """A cursor whose statements commit one by one (autocommit)."""
        ...

    def transaction(self) -> AbstractContextManager[Cursor]:
        """A transaction, committed on leaving (rolled back on an error)."""
        ...


class Database(ABC):
    """The store's database as the projections and the planner use it: transactions, and
    positions tracked by name, written in the same transaction as the rows they describe."""

    dialect: Dialect

    @abstractmethod
    def transaction(self, *, commit: bool) -> AbstractContextManager[Cursor]:
        """A transaction: committed on leaving when `commit`, rolled back otherwise (and on
        an error). Read-only work passes commit=False."""

    @abstractmethod
    def lock(self, c: Cursor) -> None:
        """Take the database's write lock in the transaction of `c` now (not at its first
        write), so no other writer can slip in before it commits."""

    @abstractmethod
    def tracked(self, name: str) -> int:
        """The position last tracked under `name` (0 if none)."""

    @abstractmethod
    def tracked_in(self, c: Cursor, name: str) -> int:
        """`tracked`, read in the transaction of `c`."""

    @abstractmethod
    def claim(self, c: Cursor, name: str) -> None:
        """Serialise the transactions that write what `name` stands for (e.g. the
        projections), across processes: wait until no other transaction holds the claim,
        then hold it until the transaction of `c` ends. What the caller reads after it
        (e.g. `tracked_in`) is what the previous holder committed."""

    @abstractmethod
    def scratch_session(self) -> AbstractContextManager[ScratchSession]:
        """A connection of its own, outside the pool, for work on scratch tables (a rebuild's
        fresh generation): a crash may lose what it committed, which is fine for tables that
        are dropped unless a later durable transaction swaps them in. Used by one thread at a
        time; closed on leaving."""

    @abstractmethod
    def track(self, c: Cursor, name: str, position: int) -> None:
        """Track `position` under `name` in the transaction of `c`. Positions only advance:
        one at or below the tracked one is ignored."""

    def views_kept(self, c: Cursor) -> AbstractContextManager[None]:
        """Around replacing tables in the transaction of `c` (a rebuild's swap): the views
        synchub made over them are dropped first and made again after, with their grants.
        Nothing to do where synchub makes no views (the default)."""
        return nullcontext()

    def read_roles(self) -> list[str]:
        """The database roles granted read access to synchub's views (none by default)."""
        return []


class EventStore(ABC):
    """Append-only event log. One instance per process; methods are thread-safe."""

    codec: Codec
    db: Database
    """The database the store lives in, for the projections (hub's own interface)."""
    location: str
    """Where the store is, to show a person: a file's path, or a URL without its password."""

    @abstractmethod
    def append(self, events: Sequence[NewEvent], schemas: Iterable[Schema] = ()) -> int:
        """Store `events` (and any of `schemas` not yet stored) atomically; return the last
        position, or the head if `events` is empty. Raises ConcurrencyError on a version clash."""

    def append_next(
        self, stream: str, event_type: str, payload: bytes | Callable[[int], bytes]
    ) -> int:
        """Append one event to `stream` after its head (version 1 for a new stream) and return
        the version it took; `payload` may be a function of that version (for a payload that
        records it). Another writer appending to `stream` meanwhile makes it raise
        ConcurrencyError, with nothing stored."""
        last = self.last(stream)
        version = 1 if last is None else last.version + 1
        data = payload(version) if callable(payload) else payload
        self.append([NewEvent(stream, version, str(event_type), data)])
        return version

    def append_async(
        self, events: Sequence[NewEvent], schemas: Iterable[Schema] = ()
    ) -> Future[int]:
        """Like `append`, but may return before the events are durable: the future then gives
        the last position, or the error. A version clash may also raise at once. Appends are
        applied in call order; none is stored before an earlier one is committed."""
        future: Future[int] = Future()
        future.set_result(self.append(events, schemas))
        return future

    @abstractmethod
    def read(
        self,
        after: int = 0,
        upto: int | None = None,
        limit: int = 1000,
        types: Sequence[str] = (),
    ) -> list[StoredEvent]:
        """Events with `after` < position <= `upto`, in order, at most `limit`, of `types` if given."""

    @abstractmethod
    def read_in(
        self, c: Cursor, after: int = 0, upto: int | None = None, limit: int = 1000
    ) -> list[StoredEvent]:
        """`read` inside a transaction the caller holds on `db` (e.g. a rebuild's swap)."""

    @abstractmethod
    def read_stream(
        self, stream: str, after_version: int = 0, upto_version: int | None = None
    ) -> list[StoredEvent]:
        """Events of one stream in version order."""

    @abstractmethod
    def last(self, stream: str) -> StoredEvent | None:
        """The latest event of `stream`, or None if the stream is empty."""

    @abstractmethod
    def heads(self, streams: Sequence[str]) -> dict[str, tuple[int, bytes]]:
        """For each existing stream among `streams`: (latest version, digest of latest payload)."""

    @abstractmethod
    def heads_by_prefix(self, prefix: str) -> dict[str, tuple[int, bytes]]:
        """Like `heads`, for every stream whose name starts with `prefix`."""

    @abstractmethod
    def head(self) -> int:
        """The position of the latest event (0 when the store is empty)."""

    @abstractmethod
    def position_at(self, when: dt.datetime) -> int:
        """The last position appended at or before `when` (0 if none)."""

    @abstractmethod
    def time_of(self, position: int) -> dt.datetime | None:
        """When the append that stored `position` happened (UTC), or None if no such position."""

    @abstractmethod
    def schema_json(self, fingerprint: bytes) -> str | None:
        """The JSON text of a stored schema, by its 8-byte fingerprint."""

    @abstractmethod
    def schemas(self) -> list[tuple[str, str, str]]:
        """Every stored schema as (fingerprint hex, full name, JSON text), oldest first."""

    @abstractmethod
    def appends(self) -> list[tuple[int, int]]:
        """(last position, time in µs since the epoch) of every append, in order: the clock
        behind `position_at` and `time_of` (what a migration copies with the events)."""

    @abstractmethod
    def close(self) -> None:
        """Release connections. The store is unusable afterwards."""

    def read_all(
        self, after: int = 0, upto: int | None = None, page: int = 5000, types: Sequence[str] = ()
    ) -> Iterator[StoredEvent]:
        """Every event after `after` (up to `upto`), fetched in pages."""
        while True:
            events = self.read(after, upto, page, types)
            yield from events
            if len(events) < page:
                return
            after = events[-1].position

    def read_between(
        self, start: dt.datetime, end: dt.datetime, limit: int = 1000
    ) -> list[StoredEvent]:
        """Events appended in the time interval (start, end]."""
        return self.read(self.position_at(start), self.position_at(end), limit)

    def decode(self, event: StoredEvent) -> object:
        """The event's payload as Python values, via the schema its header names."""
        return self.codec.decode(event.payload)


class CommitThread(ABC):
    """`append` and `append_async` for a backend whose `_append_now` stores one append: async
    appends insert and commit on one background thread, in call order; once that thread runs,
    a plain `append` queues behind them, so appends are stored in call order whatever the
    thread that made them."""

    _committer: ThreadPoolExecutor | None = None
    _starting = threading.Lock()

    @abstractmethod
    def _append_now(self, events: Sequence[NewEvent], schemas: Iterable[Schema]) -> int:
        """Insert and commit one append (the backend's own); return its last position."""

    def append(self, events: Sequence[NewEvent], schemas: Iterable[Schema] = ()) -> int:
        if self._committer is not None:
            return self._committer.submit(self._append_now, events, schemas).result()
        return self._append_now(events, schemas)

    def append_async(
        self, events: Sequence[NewEvent], schemas: Iterable[Schema] = ()
    ) -> Future[int]:
        with self._starting:
            if self._committer is None:
                self._committer = ThreadPoolExecutor(1, thread_name_prefix="synchub-commit")
        return self._committer.submit(self._append_now, events, schemas)

    def _stop_committing(self) -> None:
        """Wait for the queued appends, then stop the commit thread."""
        if self._committer is not None:
            self._committer.shutdown(wait=True)
            self._committer = None


def new_schemas(
    codec: Codec, stored: set[bytes], events: Sequence[NewEvent], schemas: Iterable[Schema]
) -> dict[bytes, Schema]:
    """The schemas of `schemas` and of the events' payloads that a store lacks (`stored`: the
    fingerprints it has; each checked once), added to `codec`. Raises StoreError for a payload
    whose schema nobody knows."""
    new = {s.fingerprint: s for s in schemas if s.fingerprint not in stored}
    for s in new.values():
        codec.add(s)
    for fp in {e.payload[2:HEADER_LEN] for e in events}.difference(stored, new):
        known = codec.known(fp)
        if known is None:
            e = next(e for e in events if e.payload[2:HEADER_LEN] == fp)
            raise StoreError(
                f"event {e.type} for stream {e.stream} is encoded with schema "
                f"{fp.hex()}, which neither the store nor the codec knows; encode "
                "payloads with store.codec after adding their schema"
            )
        new[fp] = known
    return new
