"""Scale benchmark: a synthetic firm-year on PostgreSQL, measured as it grows.

N time-entry changes (default 10,000,000; 10 % updates of earlier entries) go into a
PostgreSQL store through the Ingestor, in steps (`--steps`, default N/10 and N); at each step:
  ingest      changes/s of the step
  catch-up    the projections brought to the head (events/s)
  as-of       `synchub state ID --at P` (hub.queries.state): p50/p99 over random entities
              and random past positions
  history     `synchub history ID` (hub.queries.history): p99
  baseline    a point read of one event by position, the floor of any lookup: the ratio is
              as-of lookups/s vs point reads/s in the same run
  size        the database's size (events, projections, indexes) per million events
At the end, one rebuild of everything (`--no-rebuild` skips it). Peak RSS is the process's.

    python bench/scale.py --events 1000000 [--pg-url URL] [--steps 100000,1000000]
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Iterator
from typing import Any

import _postgres
from _common import GenSource, emit, parser, peak_rss_mb, rate
from rebuild import deploy
from rich.console import Console
from rich.table import Table

from hub import queries
from hub.config import IngestSettings
from hub.ingest import Ingestor
from hub.store.open import open_store
from projections import Projector


class Stepped:
    """GenSource's batches read on across passes, each pass up to `limit` changes in all."""

    def __init__(self, source: GenSource) -> None:
        self.source = source
        self.system = source.system
        self.batches = source.batches()
        self.count = 0
        self.limit = 0

    def discover(self) -> Any:
        return self.source.discover()

    def read(self, checkpoint: Any, batch_size: int) -> Iterator[Any]:
        while self.count < self.limit:
            batch = next(self.batches, None)
            if batch is None:
                return
            self.count += len(batch.changes)
            yield batch

    def current_keys(self, object: str) -> set[str] | None:
        return None

    def close(self) -> None:
        pass


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def lookups(
    store: Any, ids: list[str], head: int, samples: int, rng: random.Random
) -> dict[str, float]:
    """Latencies (ms) of as-of states, histories and point reads at random places."""
    as_of, history, point = [], [], []
    for _ in range(samples):
        cid, at = rng.choice(ids), rng.randint(1, head)
        start = time.perf_counter()
        queries.state(store, cid, position=at)
        as_of.append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        store.read(at - 1, at, 1)
        point.append((time.perf_counter() - start) * 1000)
    for _ in range(max(1, samples // 5)):
        start = time.perf_counter()
        queries.history(store, rng.choice(ids))
        history.append((time.perf_counter() - start) * 1000)
    return {
        "as_of_p50_ms": round(statistics.median(as_of), 3),
        "as_of_p99_ms": round(percentile(as_of, 99), 3),
        "history_p99_ms": round(percentile(history, 99), 3),
        "point_p50_ms": round(statistics.median(point), 3),
        "as_of_per_s": rate(len(as_of), sum(as_of) / 1000),
        "point_per_s": rate(len(point), sum(point) / 1000),
    }


def rss_mb() -> float:
    """This process's resident set size now, in MB (peak_rss_mb is the high-water mark)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def sample_ids(store: Any, about: int, seed: int) -> list[str]:
    """About `about` canonical ids drawn at random (repeatably, by `seed`): the pool lookups
    choose from. Not every id: at 10M events they would take ≈ 0.7 GB of the process."""
    with store.db.transaction(commit=False) as c:
        c.execute("SELECT count(*) FROM p_canonical")
        share = min(100.0, 100.0 * about / max(int(c.fetchone()[0]), 1))
        c.execute(
            f"SELECT canonical_id FROM p_canonical TABLESAMPLE BERNOULLI ({share})"
            f" REPEATABLE ({seed})"
        )
        return [r[0] for r in c.fetchall()]


def sizes(store: Any) -> tuple[int, int]:
    """(bytes of the whole database, bytes of the events table with its indexes)."""
    with store.db.transaction(commit=False) as c:
        c.execute(
            "SELECT pg_database_size(current_database()), pg_total_relation_size('synchub_events')"
        )
        total, events = c.fetchone()
    return int(total), int(events)


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.set_defaults(events=10_000_000)
    p.add_argument("--pg-url", help="an existing PostgreSQL server (default: start one)")
    p.add_argument("--steps", help="comma-separated sizes to measure at (default N/10,N)")
    p.add_argument("--samples", type=int, default=1000, help="lookups per step")
    p.add_argument("--no-rebuild", action="store_true", help="skip the final rebuild")
    args = p.parse_args()
    n = args.events
    steps = [int(s) for s in args.steps.split(",")] if args.steps else [n // 10, n]
    rng = random.Random(args.seed)
    rows: list[dict[str, Any]] = []
    rebuild_s = None
    with _postgres.server(args.pg_url) as cluster, cluster.database() as url:
        store = open_store(url)
        deploy(store)
        projector = Projector(store)
        # one source for the whole run: each step reads on from the checkpoint
        source = Stepped(GenSource(n, 5000, 0.1, args.seed))
        ingestor = Ingestor(store, "bench", source, IngestSettings(batch_size=5000))
        done = 0
        for step in steps:
            source.limit = step
            built = source.source.build_seconds
            start = time.perf_counter()
            ingestor.run_once()
            ingest_s = time.perf_counter() - start - (source.source.build_seconds - built)
            rss_ingest, peak_ingest = rss_mb(), peak_rss_mb()
            start = time.perf_counter()
            projected = projector.catch_up()
            catch_up_s = time.perf_counter() - start
            rss_catch_up, peak_catch_up = rss_mb(), peak_rss_mb()
            head = store.head()
            ids = sample_ids(store, 20 * args.samples, args.seed)
            total, events = sizes(store)
            rows.append(
                {
                    "changes": step,
                    "events": head,
                    "ingest_per_s": rate(step - done, ingest_s),
                    "catch_up_per_s": rate(projected, catch_up_s),
                    **lookups(store, ids, head, args.samples, rng),
                    "db_mb_per_million": round(total / 1e6 / (head / 1e6), 1),
                    "events_mb_per_million": round(events / 1e6 / (head / 1e6), 1),
                    "db_mb": round(total / 1e6, 1),
                    "rss_after_ingest_mb": rss_ingest,
                    "peak_after_ingest_mb": peak_ingest,
                    "rss_after_catch_up_mb": rss_catch_up,
                    "peak_after_catch_up_mb": peak_catch_up,
                    "rss_after_lookups_mb": rss_mb(),
                }
            )
            done = step
        if not args.no_rebuild:
            start = time.perf_counter()
            projector.rebuild()
            rebuild_s = time.perf_counter() - start
            print(f"rebuild: {rebuild_s:.1f} s, rss {rss_mb()} MB, peak {peak_rss_mb()} MB")
        store.close()

    table = Table(title=f"a firm-year on PostgreSQL, {n:,} changes")
    cols = (
        ("changes", "changes"),
        ("ingest/s", "ingest_per_s"),
        ("catch-up/s", "catch_up_per_s"),
        ("as-of p50 ms", "as_of_p50_ms"),
        ("as-of p99 ms", "as_of_p99_ms"),
        ("history p99 ms", "history_p99_ms"),
        ("MB/M events", "db_mb_per_million"),
    )
    for label, _ in cols:
        table.add_column(label, justify="right")
    for row in rows:
        table.add_row(*(f"{row[key]:,}" for _, key in cols))
    Console().print(table)
    last = rows[-1]
    emit(
        {
            "name": "scale_postgres",
            "n": n,
            "steps": rows,
            "per_s": last["as_of_per_s"],
            "baseline_per_s": last["point_per_s"],
            "ratio": round(last["as_of_per_s"] / last["point_per_s"], 3),
            "as_of_p99_ms": last["as_of_p99_ms"],
            "history_p99_ms": last["history_p99_ms"],
            "rebuild_s": None if rebuild_s is None else round(rebuild_s, 1),
            "rebuild_per_s": None if rebuild_s is None else rate(last["events"], rebuild_s),
            "peak_rss_mb": peak_rss_mb(),
        }
    )


if __name__ == "__main__":
    main()
