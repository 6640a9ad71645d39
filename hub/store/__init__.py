"""The event store: one interface (`EventStore`), one backend per database.

`SQLiteEventStore` is the embedded backend (`hub.store.sqlite`); stream names and event types
are in `hub.store.streams`.
"""

from hub.store.base import EventStore, NewEvent, StoredEvent
from hub.store.sqlite import SQLiteEventStore

__all__ = ["EventStore", "NewEvent", "SQLiteEventStore", "StoredEvent"]
