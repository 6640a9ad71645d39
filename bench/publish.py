"""Publish benchmark: canonical changes from the store to Kafka topics, exactly once.

N time-entry changes are ingested into a store and projected, the catch-up making each
change's published form as `synchub run` does with `kafka:` configured (`--no-publish-form`:
without; its seconds are `catch_up_s`). Then, timed:
  publish   Publisher.publish(): read the change feed (audit rows with their published form;
            without one: the states around each, folded and encoded), make both messages of
            every change (change topic, compacted state topic) and send them in Kafka
            transactions of `kafka.batch` changes, each with its checkpoint
  baseline  a raw confluent-kafka transactional producer with the publisher's own settings
            (hub.publish.publisher.producer_config) sending the very same messages (bytes,
            keys, headers) to identical topics in transactions of the same size
  After one untimed pair (the broker's cold start), the two alternate `--repeat` times, each
  round on new topics, which of them goes first alternating; `ratio` compares the best of
  each, `ratio_median` is the median of the rounds' own ratios (raw / publish).
  latency   a steady `--rate` changes/s for `--seconds`: captured by the Ingestor, projected,
            published (the loop `synchub run` makes, at a 0.1 s poll) and received by a
            read_committed consumer; p50/p99 from the ingest call to the receipt
The broker: `--bootstrap HOST:PORT`, or one started like the tests' (tests/kafka_broker.py).

    python bench/publish.py --events 100000 [--backend postgres] [--rate 1000 --seconds 20]
"""

from __future__ import annotations

import datetime as dt
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from _common import OBJECT, OBJECT_SCHEMA, SYSTEM, GenSource, emit, parser, peak_rss_mb, rate
from confluent_kafka import Consumer, KafkaError, Producer
from rebuild import deploy
from rich.console import Console
from rich.table import Table

from hub.canonical_schemas import BUILTIN
from hub.config import IngestSettings
from hub.ingest import Ingestor
from hub.kafka_config import KafkaSettings
from hub.perf import GcBetweenPasses
from hub.publish import admin, feed
from hub.publish.batch_encoder import PublishForm
from hub.publish.feed import Place
from hub.publish.publisher import Message, Publisher, PublishReport, producer_config
from hub.publish.topics import TopicSchemas
from hub.store.open import open_store
from hub.types import Batch, Change
from projections import Projector

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' broker harness
from tests import kafka_broker


@contextmanager
def broker(bootstrap: str | None) -> Iterator[str]:
    if bootstrap:
        yield bootstrap
        return
    b = kafka_broker.start(own=True)
    try:
        yield b.bootstrap
    finally:
        b.stop()


def settings_for(bootstrap: str, run: str, batch: int) -> KafkaSettings:
    return KafkaSettings(
        bootstrap_servers=bootstrap,
        topic_prefix=f"{run}.canonical.",
        checkpoint_topic=f"{run}.published",
        transactional_id=f"{run}.publisher",
        batch=batch,
    )


def all_messages(publisher: Publisher, store: Any) -> list[list[Message]]:
    """Every change's messages, in the publisher's transactions (batches of changes)."""
    out, place = [], Place()
    while True:
        with store.db.transaction(commit=False) as c:
            changes = feed.read(c, store, place, publisher.settings.batch)
        if not changes:
            return out
        out.append(publisher.encode_changes(changes))
        place = changes[-1].place


def timed_publish(store: Any, settings: KafkaSettings) -> tuple[float, PublishReport]:
    """Seconds a new publisher takes to publish the whole feed (its start not timed)."""
    publisher = Publisher(store, settings, TopicSchemas(BUILTIN))
    publisher.start()  # topics made, transactions initialised
    start = time.perf_counter()
    report = publisher.publish()
    seconds = time.perf_counter() - start
    publisher.close()
    return seconds, report


def timed_raw(
    bootstrap: str, run: str, first: KafkaSettings, batches: list[list[Message]], prefix: str
) -> float:
    """Seconds a raw producer takes to send `batches` to new topics named with `prefix`
    (those of the first round's, prefixed; made first, not timed)."""
    admin.Topics(settings_for(bootstrap, f"{prefix}{run}r0", first.batch), {}).ensure(["TimeEntry"])
    return raw_send(first, batches, prefix)


def raw_send(settings: KafkaSettings, batches: list[list[Message]], prefix: str) -> float:
    """Seconds a raw transactional producer takes to send `batches` (topics renamed)."""
    producer = Producer(producer_config(settings, {"transactional.id": f"{prefix}raw"}))
    producer.init_transactions(60)
    start = time.perf_counter()
    for batch in batches:
        producer.begin_transaction()
        for topic, key, value, headers in batch:
            while True:
                try:
                    producer.produce(prefix + topic, value=value, key=key, headers=headers)
                    break
                except BufferError:
                    producer.poll(0.05)
        producer.commit_transaction(120)
    return time.perf_counter() - start


class Steady:
    """A source of new time entries, `per_batch` at a time, each carrying its send time."""

    system = SYSTEM

    def __init__(self) -> None:
        self.n = 0
        self.pending: list[Change] = []

    def add(self, count: int) -> None:
        now = dt.datetime.now(dt.UTC)
        for _ in range(count):
            self.n += 1
            key = f"lat-{self.n:08d}"
            record = {
                "id": key,
                "person": "u0001",
                "day": "2026-03-02",
                "minutes": 60,
                "description": f"t{time.time_ns()} #acme/web/build",
            }
            self.pending.append(Change(OBJECT, key, "upsert", record, str(self.n), now))

    def discover(self) -> Any:
        return [OBJECT_SCHEMA]

    def read(self, checkpoint: Any, batch_size: int) -> Iterator[Batch]:
        if self.pending:
            batch, self.pending = tuple(self.pending), []
            yield Batch(batch, {"offset": self.n})

    def current_keys(self, object: str) -> set[str] | None:
        return None

    def close(self) -> None:
        pass


def latency(
    store: Any, settings: KafkaSettings, per_s: int, seconds: float, form: PublishForm | None
) -> dict[str, Any]:
    """The loop at a steady rate; latencies (ms) from the ingest call to the receipt."""
    publisher = Publisher(store, settings, TopicSchemas(BUILTIN))
    publisher.publish()  # the topics exist and what the store holds is out before the clock
    received: list[float] = []
    ready, stop = threading.Event(), threading.Event()

    def consume() -> None:
        consumer = Consumer(
            {
                "bootstrap.servers": settings.bootstrap_servers,
                "group.id": f"lat-{uuid.uuid4().hex[:6]}",
                "isolation.level": "read_committed",
                "auto.offset.reset": "latest",
            }
        )
        consumer.subscribe([settings.topic_prefix + "time_entry"], on_assign=lambda *_: ready.set())
        schemas = TopicSchemas(BUILTIN)
        while not stop.is_set():
            for msg in consumer.consume(1000, 0.05):
                if msg.error() or not msg.key().startswith(b"TimeEntry/lat-"):
                    if msg.error() and msg.error().code() != KafkaError._PARTITION_EOF:
                        raise RuntimeError(msg.error().str())
                    continue
                sent = int(schemas.decode(msg.value())["after"]["description"][1:].split()[0])
                received.append((time.time_ns() - sent) / 1e6)
        consumer.close()

    thread = threading.Thread(target=consume)
    thread.start()
    ready.wait(30)
    time.sleep(1.0)
    source = Steady()
    ingestor = Ingestor(store, "steady", source, IngestSettings(batch_size=5000))
    projector = Projector(store, publish_form=form)
    tick, started = 0.1, time.perf_counter()
    sent_total = 0
    steps: dict[str, list[float]] = {"ingest": [], "catch_up": [], "publish": [], "gc": []}
    with GcBetweenPasses() as collector:  # as Hub.run: the collector's walks between passes
        while time.perf_counter() - started < seconds:
            due = int((time.perf_counter() - started) * per_s) - sent_total
            if due > 0:
                source.add(due)
                sent_total += due
            for name, step in (
                ("ingest", ingestor.run_once),
                ("catch_up", projector.catch_up),
                ("publish", publisher.publish),
                ("gc", collector.between),
            ):
                t = time.perf_counter()
                step()
                steps[name].append((time.perf_counter() - t) * 1000)
            time.sleep(max(0.0, tick - (time.perf_counter() - started) % tick))
    deadline = time.monotonic() + 30
    while len(received) < sent_total and time.monotonic() < deadline:
        time.sleep(0.1)
    stop.set()
    thread.join(30)
    ordered = sorted(received)
    return {
        "latency_changes": sent_total,
        "latency_received": len(received),
        "latency_p50_ms": round(statistics.median(ordered), 1) if ordered else None,
        "latency_p99_ms": round(ordered[int(0.99 * (len(ordered) - 1))], 1) if ordered else None,
        "latency_rate_per_s": per_s,
        # each step of the loop's ticks (ms): where a slow tick's time went
        **{f"{k}_p99_ms": round(_p99(v), 1) for k, v in steps.items() if v},
        **{f"{k}_max_ms": round(max(v), 1) for k, v in steps.items() if v},
    }


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[int(0.99 * (len(ordered) - 1))]


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    p.add_argument("--pg-url", help="an existing PostgreSQL server (default: start one)")
    p.add_argument("--bootstrap", help="an existing Kafka broker (default: start one)")
    p.add_argument("--batch", type=int, default=5000, help="changes per Kafka transaction")
    p.add_argument("--rate", type=int, default=1000, help="changes/s of the latency run")
    p.add_argument("--seconds", type=float, default=20.0, help="length of the latency run")
    p.add_argument(
        "--no-publish-form",
        action="store_true",
        help="the projections do not make the published form (the publisher folds and encodes)",
    )
    args = p.parse_args()
    with broker(args.bootstrap) as bootstrap, store_url(args) as url:
        run = f"bench{uuid.uuid4().hex[:6]}"
        store = open_store(url)
        deploy(store)
        source = GenSource(args.events, 5000, 0.1, args.seed)
        Ingestor(store, "bench", source, IngestSettings(batch_size=5000)).run_once()
        form = None if args.no_publish_form else PublishForm()
        started = time.perf_counter()
        Projector(store, publish_form=form).catch_up()
        catch_up_s = time.perf_counter() - started
        publish_times, raw_times = [], []
        first = settings_for(bootstrap, f"{run}r0", args.batch)
        # the baseline's messages, made before any round (the messages name the first
        # round's topics: the raw ones are those, prefixed)
        batches = all_messages(Publisher(store, first, TopicSchemas(BUILTIN)), store)
        # one pair first, not timed: the broker's cold first round (≈ 2.1 s against 1.3 for
        # the publisher, 1.3 against 1.05 for the raw producer) falls on neither
        timed_publish(store, settings_for(bootstrap, f"{run}warm", args.batch))
        timed_raw(bootstrap, run, first, batches, "warm.")
        report = PublishReport()
        for i in range(args.repeat):  # each on new topics, which goes first alternating
            for step in ("publish", "raw") if i % 2 == 0 else ("raw", "publish"):
                if step == "publish":
                    seconds, report = timed_publish(
                        store, settings_for(bootstrap, f"{run}r{i}", args.batch)
                    )
                    publish_times.append(seconds)
                else:
                    raw_times.append(timed_raw(bootstrap, run, first, batches, f"raw{i}."))
        if args.profile:
            import cProfile

            again = Publisher(
                store, settings_for(bootstrap, run + "p", args.batch), TopicSchemas(BUILTIN)
            )
            again.start()
            cProfile.runctx("again.publish()", globals(), {"again": again}, args.profile)
        publish_s, raw_s = min(publish_times), min(raw_times)
        messages = sum(len(b) for b in batches)
        lat = latency(
            store, settings_for(bootstrap, run + "l", args.batch), args.rate, args.seconds, form
        )
        store.close()
    per_s, baseline = rate(report.published, publish_s), rate(report.published, raw_s)
    table = Table(title=f"publish {report.published:,} changes ({messages:,} messages)")
    for col in ("", "seconds", "changes/s", "messages/s"):
        table.add_column(col, justify="right")
    table.add_row(
        "synchub publish", f"{publish_s:.2f}", f"{per_s:,.0f}", f"{messages / publish_s:,.0f}"
    )
    table.add_row("raw producer", f"{raw_s:.2f}", f"{baseline:,.0f}", f"{messages / raw_s:,.0f}")
    Console().print(table)
    Console().print(
        f"latency at {args.rate}/s for {args.seconds:g} s: p50 {lat['latency_p50_ms']} ms, "
        f"p99 {lat['latency_p99_ms']} ms ({lat['latency_received']}/{lat['latency_changes']})"
    )
    emit(
        {
            "name": f"publish_{args.backend}",
            "n": report.published,
            "messages": messages,
            "transactions": report.transactions,
            "per_s": per_s,
            "baseline_per_s": baseline,
            "ratio": round(per_s / baseline, 3),
            "ratio_median": round(
                statistics.median(r / p for r, p in zip(raw_times, publish_times, strict=True)),
                3,
            ),
            "publish_s": [round(t, 3) for t in publish_times],
            "publish_form": form is not None,
            "catch_up_s": round(catch_up_s, 3),
            "raw_s": [round(t, 3) for t in raw_times],
            **lat,
            "peak_rss_mb": peak_rss_mb(),
        }
    )


@contextmanager
def store_url(args: Any) -> Iterator[str]:
    if args.backend == "postgres":
        import _postgres

        with _postgres.server(args.pg_url) as cluster, cluster.database() as url:
            yield url
        return
    with tempfile.TemporaryDirectory() as tmp:
        yield f"sqlite:///{tmp}/bench.db"


if __name__ == "__main__":
    main()
