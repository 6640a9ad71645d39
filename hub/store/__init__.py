"""The event store: one interface (`EventStore`), one backend per database.

`open_store(settings)` picks the backend from the configuration.
"""

from hub.store.base import EventStore, NewEvent, StoredEvent
from hub.store.sqlite import SQLiteEventStore

__all__ = ["EventStore", "NewEvent", "SQLiteEventStore", "StoredEvent", "open_store"]


def open_store(path: str) -> EventStore:
    """Open (creating if needed) the embedded SQLite store at `path`."""
    return SQLiteEventStore(path)
