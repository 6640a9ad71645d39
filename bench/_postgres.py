"""The PostgreSQL side of bench/ingest.py (`--backend postgres`): a server (`--pg-url`, or one
started like the tests' harness, tests/pg_cluster.py, and stopped after), the synchub run, and
the fixed baseline: a raw `COPY` of the very same rows into an identical table, in the same
transactions."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from _common import GenSource

from hub.config import IngestSettings
from hub.ingest import Ingestor
from hub.store.postgres import PostgresEventStore

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' PostgreSQL harness
from tests import pg_cluster


@contextmanager
def server(url: str | None) -> Iterator[pg_cluster.Cluster]:
    cluster = pg_cluster.Cluster(url) if url else pg_cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


def run_synchub(url: str, n: int, batch: int, updates: float, seed: int) -> tuple[float, Any]:
    """Seconds spent ingesting into the PostgreSQL store (source build time subtracted)."""
    store = PostgresEventStore(url)
    source = GenSource(n, batch, updates, seed)
    ingestor = Ingestor(store, "bench", source, IngestSettings(batch_size=batch))
    start = time.perf_counter()
    report = ingestor.run_once()
    seconds = time.perf_counter() - start - source.build_seconds
    store.close()
    return seconds, report


def run_raw(source_url: str, url: str) -> float:
    """Seconds to COPY the synchub store's rows into a fresh identical table, one transaction
    per synchub append (boundaries from synchub_clock). Reads are not timed."""
    with psycopg.connect(source_url) as src, psycopg.connect(url) as dst:
        bounds = [r[0] for r in src.execute("SELECT last_position FROM synchub_clock ORDER BY 1")]
        dst.execute(
            "CREATE TABLE raw_events (position bigint PRIMARY KEY, stream text NOT NULL,"
            " version integer NOT NULL, type text NOT NULL, payload bytea NOT NULL,"
            " UNIQUE (stream, version))"
        )
        dst.execute("CREATE INDEX raw_events_type ON raw_events (type, position)")
        dst.commit()
        seconds, after = 0.0, 0
        for last in bounds:
            rows = src.execute(
                "SELECT position, stream, version, type, payload FROM synchub_events"
                " WHERE position > %s AND position <= %s ORDER BY position",
                (after, last),
            ).fetchall()
            start = time.perf_counter()
            with (
                dst.cursor() as c,
                c.copy(
                    "COPY raw_events (position, stream, version, type, payload) FROM STDIN"
                ) as copy,
            ):
                for row in rows:
                    copy.write_row(row)
            dst.commit()
            seconds += time.perf_counter() - start
            after = last
    return seconds


def run_library(source_url: str, url: str) -> float:
    """Seconds for the `eventsourcing` library's own PostgreSQL recorder to insert the same
    events, one `insert_events` per synchub append (its table, its notification ids). Side
    by side only: synchub does not use it (docs/postgresql.md says why)."""
    from urllib.parse import urlsplit

    from eventsourcing.persistence import StoredEvent as LibraryEvent
    from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore

    parts = urlsplit(url)
    datastore = PostgresDatastore(
        parts.path.lstrip("/"),
        parts.hostname or "127.0.0.1",
        parts.port or 5432,
        parts.username or "postgres",
        parts.password or "",
        originator_id_type="text",
    )
    recorder = PostgresApplicationRecorder(datastore)
    recorder.create_table()
    with psycopg.connect(source_url) as src:
        bounds = [r[0] for r in src.execute("SELECT last_position FROM synchub_clock ORDER BY 1")]
        seconds, after = 0.0, 0
        for last in bounds:
            rows = src.execute(
                "SELECT stream, version, type, payload FROM synchub_events"
                " WHERE position > %s AND position <= %s ORDER BY position",
                (after, last),
            ).fetchall()
            events = [LibraryEvent(s, v, t, bytes(p)) for s, v, t, p in rows]
            start = time.perf_counter()
            recorder.insert_events(events)
            seconds += time.perf_counter() - start
            after = last
    datastore.close()
    return seconds


def measure(
    cluster: pg_cluster.Cluster, n: int, batch: int, updates: float, seed: int, repeat: int
) -> dict[str, Any]:
    """Best-of-`repeat` synchub and raw COPY timings at size `n`, each on fresh databases."""
    hub_s, raw_s, lib_s = [], [], []
    report: Any = None
    for _ in range(repeat):
        with (
            cluster.database() as url,
            cluster.database() as raw_url,
            cluster.database() as lib_url,
        ):
            seconds, report = run_synchub(url, n, batch, updates, seed)
            hub_s.append(seconds)
            raw_s.append(run_raw(url, raw_url))
            lib_s.append(run_library(url, lib_url))
    return {
        "hub_s": min(hub_s),
        "raw_s": min(raw_s),
        "library_s": min(lib_s),
        "report": report,
        "sync": "postgres",
    }
