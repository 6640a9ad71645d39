"""Opening the event store a URL names: `sqlite:///<path>` or `postgresql://…`."""

from __future__ import annotations

from pathlib import Path

from hub.store.base import EventStore

__all__ = ["is_postgres", "open_store", "store_exists"]


def is_postgres(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


def open_store(url: str) -> EventStore:
    """The store at `url`, created if it does not exist yet (an SQLite file's folder too)."""
    if is_postgres(url):
        from hub.store.postgres import PostgresEventStore  # the driver only when used

        return PostgresEventStore(url)
    from hub.store.sqlite import SQLiteEventStore

    path = url.removeprefix("sqlite:///")
    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    return SQLiteEventStore(path)


def store_exists(url: str) -> bool:
    """Whether a store is at `url` already (the file, or the tables in the database)."""
    if is_postgres(url):
        from hub.store.postgres import postgres_store_exists

        return postgres_store_exists(url)
    return Path(url.removeprefix("sqlite:///")).exists()
