"""The ingestor, unchanged, on the PostgreSQL store: the same batches give the same facts as on
SQLite (same payload bytes, positions and heads), and capturing them again stores nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench._common import GenSource
from hub.avro import HEADER_LEN
from hub.config import IngestSettings
from hub.ingest import Ingestor
from hub.store.base import EventStore
from hub.store.postgres import PostgresEventStore
from hub.store.sqlite import SQLiteEventStore
from hub.types import Batch


class Snapshot(GenSource):
    """The records of `source` as they are after all its changes, in one batch."""

    def __init__(self, source: GenSource) -> None:
        super().__init__(0, 1)
        last = {c.key: c for b in source.batches() for c in b.changes}
        self.changes = tuple(last.values())

    def read(self, checkpoint: Any, batch_size: int) -> Iterator[Batch]:
        yield Batch(self.changes, {"snapshot": len(self.changes)})


def ingest(store: EventStore, n: int) -> tuple[int, int]:
    source = GenSource(n, 500, 0.2, seed=7)
    report = Ingestor(store, "bench", source, IngestSettings(batch_size=500)).run_once()
    return report.appended, report.skipped


def test_the_same_changes_make_the_same_facts_on_both_backends(pg_url: str, tmp_path: Path) -> None:
    pg = PostgresEventStore(pg_url)
    lite = SQLiteEventStore(str(tmp_path / "events.db"))
    try:
        assert ingest(pg, 3000) == ingest(lite, 3000)
        assert pg.head() == lite.head()
        strip = lambda events: [(e.position, e.stream, e.version, e.type) for e in events]  # noqa: E731
        pg_events, lite_events = list(pg.read_all()), list(lite.read_all())
        assert strip(pg_events) == strip(lite_events)
        # each fact has the same schema and content digest (the envelope's capture time and
        # the checkpoints' differ between two runs)
        pairs = [(a, b) for a, b in zip(pg_events, lite_events, strict=True)]
        assert sum(a.type == "SourceChanged" for a, _ in pairs) > 2000
        assert all(a.payload[: HEADER_LEN + 8] == b.payload[: HEADER_LEN + 8] for a, b in pairs)
        assert pg.heads_by_prefix("source/") == lite.heads_by_prefix("source/")
        head = pg.head()
        latest = Snapshot(GenSource(3000, 500, 0.2, seed=7))  # every record as it is now
        again = Ingestor(pg, "snapshot", latest).run_once()
        assert again.appended == 0 and again.skipped == len(latest.changes)  # nothing new
        assert pg.head() == head + 1  # only the new connector's checkpoint
    finally:
        pg.close()
        lite.close()
