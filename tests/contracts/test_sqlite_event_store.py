"""The SQLite backend passes the EventStore contract."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import pytest
from eventsourcing.persistence import IntegrityError

from hub.contracts.event_store import SCHEMA, EventStoreContract
from hub.store.base import EventStore
from hub.store.sqlite import SQLiteEventStore


class TestSQLiteEventStore(EventStoreContract):
    def make_store(self, tmp_path: Path) -> EventStore:
        return SQLiteEventStore(str(tmp_path / "events.db"))


def test_a_failed_commit_does_not_leave_the_connection_inside_its_transaction(
    tmp_path: Path,
) -> None:
    """A COMMIT that fails (here a deferred foreign key; in the field SQLITE_BUSY or a full
    disk) leaves SQLite's transaction open; the connection goes back to the pool rolled back,
    so the next append starts clean and nothing of the failed transaction is kept."""
    store = SQLiteEventStore(str(tmp_path / "events.db"))
    try:
        store.codec.add(SCHEMA)
        pool = store.datastore.pool
        conn = pool.get_connection(is_writer=True)
        raw = conn._sqlite_conn
        raw.execute("PRAGMA foreign_keys=ON")
        raw.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
        raw.execute(
            "CREATE TABLE child (p INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)"
        )
        with pytest.raises(IntegrityError), conn.transaction(commit=True) as c:
            c.execute("INSERT INTO child VALUES (1)")  # checked, and refused, at COMMIT
        assert raw.in_transaction  # what SQLite does: the failed COMMIT kept it open
        pool.put_connection(conn)
        assert not raw.in_transaction
        assert store.append([EventStoreContract.ev(store, "s", 1, 1)]) == 1
        with store.datastore.transaction(commit=False) as c:
            c.execute("SELECT count(*) FROM child")
            assert c.fetchone()[0] == 0
    finally:
        store.close()


def test_a_clock_of_an_older_synchub_is_converted_to_microseconds_on_open(
    tmp_path: Path,
) -> None:
    """An older synchub kept `synchub_clock.recorded_at` as REAL seconds, finer than the
    microseconds it showed. Opening such a store converts the column once to INTEGER
    microseconds, each time to the one shown before: a time printed then still finds its
    position, and later appends keep the clock non-decreasing."""
    path = tmp_path / "events.db"
    store = SQLiteEventStore(str(path))
    store.codec.add(SCHEMA)
    for version in range(1, 21):
        store.append([EventStoreContract.ev(store, "s", version, version)])
    store.close()
    start = dt.datetime.now(dt.UTC).timestamp()
    old = [start + i * 0.0000013 for i in range(20)]  # sub-microsecond parts, as time.time()
    db = sqlite3.connect(path)
    with db:  # the clock as an older synchub wrote it
        db.execute("DROP TABLE synchub_clock")
        db.execute(
            "CREATE TABLE synchub_clock ("
            " last_position INTEGER PRIMARY KEY, recorded_at REAL NOT NULL)"
        )
        db.execute("CREATE INDEX synchub_clock_time ON synchub_clock (recorded_at)")
        db.executemany(
            "INSERT INTO synchub_clock VALUES (?, ?)", [(i + 1, t) for i, t in enumerate(old)]
        )
    db.close()
    shown_then = [dt.datetime.fromtimestamp(t, dt.UTC) for t in old]  # what `events show` said

    store = SQLiteEventStore(str(path))
    try:
        store.codec.add(SCHEMA)
        for position, shown in enumerate(shown_then, 1):
            assert store.time_of(position) == shown
            assert store.position_at(dt.datetime.fromisoformat(shown.isoformat())) >= position
        assert store.append([EventStoreContract.ev(store, "s", 21, 21)]) == 21
        recorded = store.time_of(21)
        assert recorded is not None and recorded >= shown_then[-1]
        assert store.position_at(recorded) == 21
    finally:
        store.close()
    again = SQLiteEventStore(str(path))  # converted once: opening again changes nothing
    again.close()
    db = sqlite3.connect(path)
    try:
        assert db.execute(
            "SELECT type FROM pragma_table_info('synchub_clock') WHERE name='recorded_at'"
        ).fetchone() == ("INTEGER",)
        assert {r[0] for r in db.execute("SELECT typeof(recorded_at) FROM synchub_clock")} == {
            "integer"
        }
        assert not db.execute("SELECT name FROM sqlite_master WHERE name LIKE '%old'").fetchall()
        assert db.execute(
            "SELECT count(*) FROM sqlite_master WHERE name='synchub_clock_time'"
        ).fetchone() == (1,)
    finally:
        db.close()
