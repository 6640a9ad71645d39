"""Rebuild benchmark: `Projector(store).rebuild()` over N ingested time entries.

The store gets a MappingDeployed event (the realistic mapping in _common.MAPPING_SPEC: tag
extraction, int, date), then N synthetic time-entry changes through the Ingestor. Then, timed:
  catch-up   Projector.catch_up() from an empty projection (reported, not the target)
  rebuild    Projector.rebuild(): fold the whole log into fresh tables and swap them in
  baseline   the minimum work of a replay, fixed: store.read_all() + fastavro's own
             schemaless_reader of every payload (not synchub's codec: a faster codec shows)
Checksums are taken after the catch-up and after every rebuild; `checksums_equal` says they
all matched. They are computed in a child process (Projector.checksums() holds whole tables in
memory), so `peak_rss_mb` is the rebuild's; the child's peak is `checksum_peak_rss_mb`.

    python bench/rebuild.py --events 100000
    python bench/rebuild.py --backend postgres --events 100000 [--pg-url URL]
"""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import tempfile
import time
from typing import Any

import fastavro
from _common import MAPPING_SPEC, GenSource, emit, parser, peak_rss_mb, profiled, rate
from rich.console import Console
from rich.table import Table

from hub.codec import HEADER_LEN
from hub.config import IngestSettings
from hub.ingest import Ingestor, now_micros
from hub.mapping import Mapping
from hub.schemas import canonical_entities, hub_schema
from hub.store.base import EventStore, NewEvent
from hub.store.open import open_store
from projections import Projector, audit, canonical_queries


def deploy(store: EventStore, target: dict[str, Any] | None = None) -> None:
    """Append MappingDeployed v1 exactly as hub.mapping.deploy.deploy_mapping does (the bench
    mapping, with `target` as its one target rule when given)."""
    spec = MAPPING_SPEC if target is None else {**MAPPING_SPEC, "targets": [target]}
    mapping = Mapping.from_dict(spec, known_entities=canonical_entities())
    schema = hub_schema("mapping_deployed")
    store.codec.add(schema)
    payload = {
        "name": mapping.name,
        "version": 1,
        "spec": json.dumps(mapping.spec, sort_keys=True),
        "digest": mapping.digest,
        "at": now_micros(),
    }
    stream = f"mapping/{mapping.name}"
    store.append([NewEvent(stream, 1, "MappingDeployed", store.codec.encode(schema, payload))])


def timed(fn: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def checksums(url: str) -> tuple[dict[str, str], float]:
    """The projections' checksums and the peak RSS of computing them (run in a child)."""
    store = open_store(url)
    try:
        return Projector(store).checksums(), peak_rss_mb()
    finally:
        store.close()


def replay_baseline(store: EventStore) -> int:
    """The fixed baseline: read every event and decode it with fastavro's own
    `schemaless_reader` (not synchub's codec, so a faster codec shows in the ratio)."""
    codec, read = store.codec, fastavro.schemaless_reader
    n = 0
    for e in store.read_all():
        read(io.BytesIO(e.payload[HEADER_LEN:]), codec.schema_of(e.payload).parsed, None)
        n += 1
    return n


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    p.add_argument("--pg-url", help="an existing PostgreSQL server (default: start one)")
    args = p.parse_args()
    if args.backend == "postgres":
        import _postgres  # only with the PostgreSQL backend: it starts a server

        with _postgres.server(args.pg_url) as cluster, cluster.database() as url:
            run(args, url)
        return
    with tempfile.TemporaryDirectory(prefix="synchub-bench-") as tmp:
        run(args, f"sqlite:///{os.path.join(tmp, 'store.db')}")


def run(args: Any, url: str) -> None:
    """The benchmark on the (empty) store at `url`."""
    child = multiprocessing.get_context("spawn").Pool(1)
    store = open_store(url)
    deploy(store)
    source = GenSource(args.events, 5000, 0.1, args.seed)
    Ingestor(store, "bench", source, IngestSettings(batch_size=5000)).run_once()
    total = store.head()

    projector = Projector(store)
    catch_up_s, _ = timed(projector.catch_up)
    reference, checksum_rss = child.apply(checksums, (url,))
    rebuild_s, baseline_s = [], []
    equal = True
    for _ in range(args.repeat):
        seconds, _ = timed(projector.rebuild)
        rebuild_s.append(seconds)
        after, rss = child.apply(checksums, (url,))
        equal = equal and after == reference
        checksum_rss = max(checksum_rss, rss)
        seconds, replayed = timed(lambda: replay_baseline(store))
        assert replayed == total
        baseline_s.append(seconds)
    if args.profile:
        with profiled(args.profile):
            projector.rebuild()
    with store.db.transaction(commit=False) as c:
        entities = canonical_queries.entity_count(c)
        audit_rows = audit.row_count(c)
    store.close()
    child.close()

    best, base = min(rebuild_s), min(baseline_s)
    table = Table(title=f"rebuild of {total:,} events ({entities:,} TimeEntry entities)")
    for col in ("phase", "seconds", "events/s", "µs/event", "vs baseline"):
        table.add_column(col, justify="right" if col != "phase" else "left")
    for label, s in (
        ("catch-up (initial)", catch_up_s),
        ("rebuild", best),
        ("baseline: read_all + fastavro", base),
    ):
        table.add_row(
            label, f"{s:.2f}", f"{total / s:,.0f}", f"{s / total * 1e6:.1f}", f"{base / s:.2f}x"
        )
    Console().print(table)
    emit(
        {
            "name": "rebuild" if url.startswith("sqlite") else "rebuild_postgres",
            "backend": url.partition(":")[0],
            "n": args.events,
            "events": total,
            "repeat": args.repeat,
            "per_s": rate(total, best),
            "baseline_per_s": rate(total, base),
            "ratio": round(base / best, 3),
            "catch_up_per_s": rate(total, catch_up_s),
            "entities": entities,
            "audit_rows": audit_rows,
            "checksums_equal": equal,
            "peak_rss_mb": peak_rss_mb(),
            "checksum_peak_rss_mb": checksum_rss,
        }
    )


if __name__ == "__main__":
    main()
