"""The PostgreSQL backend passes the same EventStore contract as the SQLite one, on a real
PostgreSQL 15 server started by the test harness (tests/pg_cluster.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.contracts.event_store import EventStoreContract
from hub.store.base import EventStore
from hub.store.postgres import PostgresEventStore


class TestPostgresEventStore(EventStoreContract):
    @pytest.fixture(autouse=True)
    def _database(self, pg_url: str) -> None:
        self.url = pg_url

    def make_store(self, tmp_path: Path) -> EventStore:
        return PostgresEventStore(self.url)


def test_tracked_positions_only_advance_and_commit_with_their_transaction(pg_url: str) -> None:
    store = PostgresEventStore(pg_url)
    try:
        db = store.db
        assert db.tracked("canonical") == 0
        with db.transaction(commit=True) as c:
            db.lock(c)
            db.track(c, "canonical", 5)
        with db.transaction(commit=True) as c:
            db.track(c, "canonical", 3)  # behind: ignored
        assert db.tracked("canonical") == 5
        with pytest.raises(RuntimeError), db.transaction(commit=True) as c:
            db.track(c, "canonical", 9)
            raise RuntimeError("the rows it describes failed: nothing is kept")
        assert db.tracked("canonical") == 5
        with db.scratch_session() as scratch:
            with scratch.transaction() as c:
                c.execute("CREATE TABLE scratch_t (x int)")
                c.execute("INSERT INTO scratch_t VALUES (1)")
            cur = scratch.cursor()
            cur.execute("SELECT count(*) FROM scratch_t")
            assert cur.fetchone() == (1,)
    finally:
        store.close()
