"""Moving a store to PostgreSQL: the embedded SQLite store's log copied as it is — events with
their positions, the schemas, the clock — into an empty PostgreSQL store, in one transaction,
then verified (counts, a checksum of every event, the clock, the stream heads). The source is
only read. The projections are rebuilt from the copied log where the hub runs next.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from hub.errors import StoreError
from hub.store.base import EventStore, StoredEvent
from hub.store.postgres import PostgresEventStore

__all__ = ["Migration", "log_checksum", "migrate"]

PAGE = 20_000


@dataclass
class Migration:
    events: int
    schemas: int
    appends: int
    checksum: str
    """SHA-256 of every event (position, stream, version, type, payload), equal on both sides."""


def log_checksum(store: EventStore) -> tuple[int, str]:
    """(events, SHA-256 over every event in order)."""
    digest = hashlib.sha256()
    count = 0
    for e in store.read_all(page=PAGE):
        digest.update(f"{e.position}\x00{e.stream}\x00{e.version}\x00{e.type}\x00".encode())
        digest.update(e.payload)
        count += 1
    return count, digest.hexdigest()


def migrate(
    source: EventStore,
    target: PostgresEventStore,
    progress: Callable[[int, int], None] | None = None,
) -> Migration:
    """Copy `source`'s log into the empty `target` and verify it; StoreError (with what
    differs) when the copy does not match, ConcurrencyError when `target` is not empty."""
    head = source.head()
    schemas = source.schemas()
    appends = source.appends()

    def pages() -> Iterator[list[StoredEvent]]:
        after = 0
        while after < head:
            page = source.read(after, head, PAGE)
            if not page:
                return
            yield page
            after = page[-1].position
            if progress is not None:
                progress(after, head)

    copied = target.import_log(pages(), schemas, appends)
    count, checksum = log_checksum(source)
    copied_count, copied_checksum = log_checksum(target)
    problems = []
    if (count, copied) != (copied_count, copied_count):
        problems.append(f"{count} events in the source, {copied_count} copied")
    if checksum != copied_checksum:
        problems.append("the events' checksums differ")
    if target.appends() != appends:
        problems.append("the clocks differ")
    if [s[0] for s in target.schemas()] != [s[0] for s in schemas]:
        problems.append("the schemas differ")
    if target.heads_by_prefix("") != source.heads_by_prefix(""):
        problems.append("the stream heads differ")
    if problems:
        raise StoreError(
            "the copy does not match its source: " + "; ".join(problems) + " — drop the "
            "target database's synchub tables and migrate again (the source is untouched)"
        )
    return Migration(count, len(schemas), len(appends), checksum)
