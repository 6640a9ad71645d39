"""The SQLite backend passes the EventStore contract."""

from __future__ import annotations

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
