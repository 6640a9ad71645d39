"""The SQLite backend passes the EventStore contract."""

from __future__ import annotations

from pathlib import Path

from hub.store.base import EventStore
from hub.store.sqlite import SQLiteEventStore
from tests.contracts.event_store_contract import EventStoreContract


class TestSQLiteEventStore(EventStoreContract):
    def make_store(self, tmp_path: Path) -> EventStore:
        return SQLiteEventStore(str(tmp_path / "events.db"))
