"""Indicators benchmark: `hub.indicators.indicators(..., position=P)` as of random past moments
on a store of N events, the way `synchub indicators --at P` / `--as-of T` answers.

The store: the bench mapping (_common.MAPPING_SPEC) with a TimeEntry target (erp/lines, when
approved), N/2 time entries captured (about half of them approved), and the ERP posting each
approved entry a lag of --lag entries later (DeltaPlanned + WriteAttempted `applied`, as the
executor appends them), except a fraction --refused it refuses (`rejected`: a write exception,
the entry waits for ever). Then a rebuild folds it all (the backlog projection included).

Timed, per query: the indicators as of a random position (uniform over the log), --queries
times: p50, p99 and max latency. Baseline, fixed: what a query costs without the backlog
projection — the TimeEntry states as of the same position read from the audit trail
(`audit.states_at`, the whole entity scanned), a few positions. `ratio` = baseline / p50.

    python bench/indicators.py --events 1000000 [--queries 200] [--lag 2000] [--refused 0.002]
"""

from __future__ import annotations

import json
import os
import random
import statistics
import tempfile
import time
from collections import deque
from collections.abc import Iterator
from typing import Any

from _common import GenSource, emit, parser, peak_rss_mb, rate
from rebuild import deploy
from rich.console import Console
from rich.table import Table

from hub import indicators
from hub.config import IngestSettings
from hub.ingest import Ingestor, now_micros
from hub.schemas import hub_schema
from hub.store.base import NewEvent
from hub.store.sqlite import SQLiteEventStore
from hub.store.streams import EventType, outbound_stream
from hub.types import Batch
from projections import Projector, audit

TARGET = {
    "system": "erp",
    "object": "lines",
    "entity": "TimeEntry",
    "when": "approved",
    "fields": {"hours": "minutes | div 60 | round 2", "description": "description"},
}


class PostingSource(GenSource):
    """Time entries (creates only); between batches, the ERP's answers for the approved
    entries of `lag` entries before."""

    def __init__(self, store: SQLiteEventStore, n: int, lag: int, refused: float) -> None:
        super().__init__(n, 1000, 0.0, 42)
        self.store = store
        self.lag = lag
        self.refused = refused
        self.rng = random.Random(7)
        self.waiting: deque[str] = deque()
        self.seen = 0
        self.planned = hub_schema("delta_planned")
        self.attempted = hub_schema("write_attempted")
        store.codec.add(self.planned)
        store.codec.add(self.attempted)

    def read(self, checkpoint: Any, batch_size: int) -> Iterator[Batch]:
        for batch in self.batches():
            yield batch
            started = time.perf_counter()
            for change in batch.changes:
                self.seen += 1
                if "#approved" in str((change.record or {}).get("description")):
                    self.waiting.append(change.key)
            events = []
            while self.waiting and len(self.waiting) * 2 > self.lag:
                events += self.answer(self.waiting.popleft())
            if events:
                self.store.append(events)
            self.build_seconds += time.perf_counter() - started

    def answer(self, key: str) -> list[NewEvent]:
        cid = f"TimeEntry/{key}"
        stream = outbound_stream("erp", "lines", cid)
        at = now_micros()
        idem = f"erp:lines:{cid}:1"
        planned = {
            "target": "erp",
            "object": "lines",
            "canonical_id": cid,
            "target_key": None,
            "op": "create",
            "fields": json.dumps({"hours": 1.0}),
            "desired": json.dumps({"hours": 1.0}),
            "idempotency_key": idem,
            "mapping_version": 1,
            "at": at,
        }
        refused = self.rng.random() < self.refused
        attempted = {
            "target": "erp",
            "object": "lines",
            "canonical_id": cid,
            "idempotency_key": idem,
            "attempt": 1,
            "status": "rejected" if refused else "applied",
            "target_key": None if refused else f"line-{key}",
            "reason": "period closed" if refused else None,
            "retry_after": None,
            "duration_ms": 3.0,
            "at": at,
        }
        codec = self.store.codec
        return [
            NewEvent(stream, 1, EventType.DELTA_PLANNED, codec.encode(self.planned, planned)),
            NewEvent(stream, 2, EventType.WRITE_ATTEMPTED, codec.encode(self.attempted, attempted)),
        ]


def build(path: str, events: int, lag: int, refused: float) -> tuple[SQLiteEventStore, float]:
    """The store of about `events` events, folded; and the seconds the fold took."""
    store = SQLiteEventStore(path)
    deploy(store, target=TARGET)
    source = PostingSource(store, events // 2, lag, refused)
    Ingestor(store, "bench", source, IngestSettings(batch_size=1000)).run_once()
    started = time.perf_counter()
    Projector(store).rebuild()
    return store, time.perf_counter() - started


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--queries", type=int, default=200, help="indicator queries timed")
    p.add_argument("--lag", type=int, default=2000, help="entries between capture and posting")
    p.add_argument("--refused", type=float, default=0.002, help="fraction the ERP refuses")
    args = p.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="synchub-bench-") as tmp:
        store, fold_s = build(os.path.join(tmp, "hub.db"), args.events, args.lag, args.refused)
        head = store.head()
        positions = [rng.randint(1, head) for _ in range(args.queries)]
        latencies, waiting = [], []
        for position in positions:
            started = time.perf_counter()
            got = indicators.indicators(store, position=position)
            latencies.append(time.perf_counter() - started)
            waiting.append(got["unposted_time"]["entries"])
        now_s = min(timed(lambda: indicators.indicators(store)) for _ in range(3))
        baseline = []
        for position in positions[:3]:
            started = time.perf_counter()
            with store.db.transaction(commit=False) as c:
                sum(1 for _ in audit.states_at(c, "TimeEntry", position))
            baseline.append(time.perf_counter() - started)
        store.close()
    p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    base = statistics.median(baseline)
    table = Table(title=f"indicators as of a random position, {head:,} events")
    for col in ("measure", "ms"):
        table.add_column(col, justify="right" if col == "ms" else "left")
    for label, s in (
        ("p50", p50),
        ("p99", p99),
        ("max", max(latencies)),
        ("now (best of 3)", now_s),
        ("baseline: TimeEntry states scanned", base),
    ):
        table.add_row(label, f"{s * 1000:.1f}")
    Console().print(table)
    print(
        f"entries waiting at the queried positions: median {statistics.median(waiting):.0f}, "
        f"max {max(waiting)}; fold of the log {fold_s:.1f} s"
    )
    emit(
        {
            "name": "indicators",
            "n": head,
            "queries": args.queries,
            "per_s": rate(args.queries, sum(latencies)),
            "baseline_per_s": rate(1, base),
            "ratio": round(base / p50, 1),
            "p50_ms": round(p50 * 1000, 2),
            "p99_ms": round(p99 * 1000, 2),
            "max_ms": round(max(latencies) * 1000, 2),
            "now_ms": round(now_s * 1000, 2),
            "waiting_median": statistics.median(waiting),
            "waiting_max": max(waiting),
            "fold_s": round(fold_s, 1),
            "peak_rss_mb": peak_rss_mb(),
        }
    )


def timed(fn: Any) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
