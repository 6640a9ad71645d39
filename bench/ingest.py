"""Ingest benchmark: N synthetic time-entry changes through `hub.ingest.Ingestor`.

Measured in one run, each on a fresh SQLite file in a temp dir (best of --repeat):
  synchub        Ingestor.run_once: validate, Avro-encode, dedupe, append + checkpoint
  raw sqlite     executemany of the very same rows (copied from the synchub store) into an
                 identical `stored_events` table, same transactions, WAL, same `synchronous`
  eventsourcing  Application + Aggregate, one event per change, app.save() of B aggregates

The source builds batches lazily; the time spent building them is subtracted, so the source's
own cost is not measured and memory stays flat. `--scale` runs N=100k and N=1M (synchub and raw
only) and reports the cost per change at both sizes.

    python bench/ingest.py --events 100000 [--batch 1000] [--updates 0.1] [--scale]
    python bench/ingest.py --backend postgres --events 100000 [--pg-url URL]  (vs a raw COPY)
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import time
from typing import Any

from _common import GenSource, emit, parser, peak_rss_mb, profiled, rate
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from rich.console import Console
from rich.table import Table

from hub.config import IngestSettings
from hub.ingest import Ingestor
from hub.store.sqlite import SQLiteEventStore


def run_synchub(path: str, n: int, batch: int, updates: float, seed: int) -> tuple[float, Any]:
    """Seconds spent ingesting (source build time subtracted), and the IngestReport."""
    store = SQLiteEventStore(path)
    source = GenSource(n, batch, updates, seed)
    ingestor = Ingestor(store, "bench", source, IngestSettings(batch_size=batch))
    start = time.perf_counter()
    report = ingestor.run_once()
    seconds = time.perf_counter() - start - source.build_seconds
    with store.db.transaction(commit=False) as c:
        c.execute("PRAGMA synchronous")
        assert c.fetchone()[0] == 2, "the bench assumes synchub runs with synchronous=FULL"
    store.close()
    return seconds, report


def run_raw(source_db: str, path: str) -> tuple[float, str]:
    """Seconds to executemany the source store's rows into a fresh identical table, one
    transaction per synchub append (boundaries from `synchub_clock`). Reads are not timed."""
    src = sqlite3.connect(source_db)
    ddl = [
        r[0]
        for r in src.execute(
            "SELECT sql FROM sqlite_master WHERE tbl_name='stored_events' AND sql IS NOT NULL"
        )
    ]
    bounds = [r[0] for r in src.execute("SELECT last_position FROM synchub_clock ORDER BY 1")]
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    for statement in ddl:
        db.execute(statement)
    seconds = 0.0
    after = 0
    for last in bounds:
        rows = src.execute(
            "SELECT originator_id, originator_version, topic, state FROM stored_events"
            " WHERE rowid > ? AND rowid <= ? ORDER BY rowid",
            (after, last),
        ).fetchall()
        start = time.perf_counter()
        db.execute("BEGIN")
        db.executemany("INSERT INTO stored_events VALUES (?,?,?,?)", rows)
        db.execute("COMMIT")
        seconds += time.perf_counter() - start
        after = last
    synchronous = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}[
        db.execute("PRAGMA synchronous").fetchone()[0]
    ]
    db.close()
    src.close()
    return seconds, synchronous


class TimeEntry(Aggregate):
    @event("Captured")
    def __init__(self, record: dict[str, Any]) -> None:
        self.record = record

    @event("Edited")
    def edit(self, record: dict[str, Any]) -> None:
        self.record = record


def run_eventsourcing(path: str, n: int, batch: int, updates: float, seed: int) -> float:
    """Seconds for the eventsourcing Application path (source build time subtracted)."""
    app = Application(env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": path})
    source = GenSource(n, batch, updates, seed)
    live: dict[str, TimeEntry] = {}
    start = time.perf_counter()
    for b in source.batches():
        touched: dict[str, TimeEntry] = {}
        for change in b.changes:
            agg = live.get(change.key)
            if agg is None:
                agg = live[change.key] = TimeEntry(dict(change.record or {}))
            else:
                agg.edit(dict(change.record or {}))
            touched[change.key] = agg
        app.save(*touched.values())
    seconds = time.perf_counter() - start - source.build_seconds
    app.close()
    return seconds


def measure(n: int, batch: int, updates: float, seed: int, repeat: int, tmp: str) -> dict[str, Any]:
    """Best-of-`repeat` synchub and raw timings at size `n`."""
    hub_s, raw_s = [], []
    report: Any = None
    synchronous = ""
    for i in range(repeat):
        db = os.path.join(tmp, f"synchub-{n}-{i}.db")
        seconds, report = run_synchub(db, n, batch, updates, seed)
        hub_s.append(seconds)
        raw_db = os.path.join(tmp, f"raw-{n}-{i}.db")
        seconds, synchronous = run_raw(db, raw_db)
        raw_s.append(seconds)
        for f in os.listdir(tmp):
            os.remove(os.path.join(tmp, f))
    return {"hub_s": min(hub_s), "raw_s": min(raw_s), "report": report, "sync": synchronous}


def main_postgres(args: Any) -> None:
    """`--backend postgres`: synchub's PostgreSQL store vs a raw COPY of the same rows."""
    import _postgres  # only with the PostgreSQL backend: it starts a server

    with _postgres.server(args.pg_url) as cluster:
        m = _postgres.measure(
            cluster, args.events, args.batch, args.updates, args.seed, args.repeat
        )
    n = args.events
    table = Table(title=f"ingest on PostgreSQL, batch {args.batch}, updates {args.updates:.0%}")
    for col in ("path", "N", "seconds", "changes/s", "µs/change", "vs COPY"):
        table.add_column(col, justify="right" if col != "path" else "left")
    for label, s in (
        ("synchub", m["hub_s"]),
        ("eventsourcing's recorder (insert only)", m["library_s"]),
        ("raw COPY", m["raw_s"]),
    ):
        table.add_row(
            label,
            f"{n:,}",
            f"{s:.2f}",
            f"{n / s:,.0f}",
            f"{s / n * 1e6:.1f}",
            f"{m['raw_s'] / s:.2f}x",
        )
    Console().print(table)
    emit(
        {
            "name": "ingest_postgres",
            "n": n,
            "batch": args.batch,
            "updates": args.updates,
            "repeat": args.repeat,
            "per_s": rate(n, m["hub_s"]),
            "baseline_per_s": rate(n, m["raw_s"]),
            "ratio": round(m["raw_s"] / m["hub_s"], 3),
            "library_per_s": rate(n, m["library_s"]),
            "library_ratio": round(m["raw_s"] / m["library_s"], 3),
            "appended": m["report"].appended,
            "peak_rss_mb": peak_rss_mb(),
        }
    )


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=1000, help="changes per batch / transaction")
    p.add_argument("--updates", type=float, default=0.1, help="fraction of changes that edit")
    p.add_argument("--scale", action="store_true", help="N=100k and N=1M, cost per change")
    p.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    p.add_argument("--pg-url", help="an existing PostgreSQL server (default: start one)")
    args = p.parse_args()
    if args.backend == "postgres":
        main_postgres(args)
        return
    console = Console()
    table = Table(title=f"ingest, batch {args.batch}, updates {args.updates:.0%}")
    for col in ("path", "N", "seconds", "changes/s", "µs/change", "vs raw"):
        table.add_column(col, justify="right" if col != "path" else "left")

    with tempfile.TemporaryDirectory(prefix="synchub-bench-") as tmp:
        sizes = [(args.events, args.repeat)]
        if args.scale:
            sizes = [(100_000, args.repeat), (1_000_000, 1)]
        runs = {n: measure(n, args.batch, args.updates, args.seed, r, tmp) for n, r in sizes}
        n = sizes[-1][0]
        es_s = None
        if not args.scale:
            es_s = min(
                run_eventsourcing(
                    os.path.join(tmp, f"es-{i}.db"), n, args.batch, args.updates, args.seed
                )
                for i in range(args.repeat)
            )
        if args.profile:
            with profiled(args.profile):
                db = os.path.join(tmp, "profiled.db")
                run_synchub(db, n, args.batch, args.updates, args.seed)

    for size, m in runs.items():
        for label, s in (("synchub", m["hub_s"]), ("raw sqlite executemany", m["raw_s"])):
            table.add_row(
                label,
                f"{size:,}",
                f"{s:.2f}",
                f"{size / s:,.0f}",
                f"{s / size * 1e6:.1f}",
                f"{m['raw_s'] / s:.2f}x",
            )
    if es_s is not None:
        table.add_row(
            "eventsourcing Application",
            f"{n:,}",
            f"{es_s:.2f}",
            f"{n / es_s:,.0f}",
            f"{es_s / n * 1e6:.1f}",
            f"{runs[n]['raw_s'] / es_s:.2f}x",
        )
    console.print(table)

    last = runs[n]
    report = last["report"]
    result: dict[str, Any] = {
        "name": "ingest_scale" if args.scale else "ingest",
        "n": n,
        "batch": args.batch,
        "updates": args.updates,
        "repeat": args.repeat,
        "per_s": rate(n, last["hub_s"]),
        "baseline_per_s": rate(n, last["raw_s"]),
        "ratio": round(last["raw_s"] / last["hub_s"], 3),
        "appended": report.appended,
        "skipped": report.skipped,
        "synchronous": last["sync"],
        "peak_rss_mb": peak_rss_mb(),
    }
    if es_s is not None:
        result["eventsourcing_per_s"] = rate(n, es_s)
        result["eventsourcing_ratio"] = round(last["raw_s"] / es_s, 3)
    if args.scale:
        small, big = (runs[size]["hub_s"] / size * 1e6 for size, _ in sizes)
        result["us_per_change_100k"] = round(small, 2)
        result["us_per_change_1m"] = round(big, 2)
        result["linearity"] = round(big / small, 3)
    emit(result)


if __name__ == "__main__":
    main()
