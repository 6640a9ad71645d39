"""Outbound workers benchmark: a target's writes done by 1 and by 2 `synchub worker outbound`
processes (one Kafka consumer group), against the target's own client writing the same deltas.

A firm's folder (tests/integration/conftest.py: a filedrop tracker and a filedrop `erp`
target) with N time entries, half of them approved: `synchub sync --once` captures, projects,
plans N/2 writes and publishes them for the workers (kafka.outbound_targets: [erp]; not timed).
Then, timed:
  workers   k processes `synchub worker outbound --target erp` (k = 1, then 2, each on a firm
            of its own): from the first write in the outbox to the last outcome recorded in
            the store (their start and group join are not in it)
  baseline  the same deltas written by the filedrop sink itself (FiledropSink.apply), in
            batches of `outbound.batch_size`, into a scratch outbox
The rate limit per target is lifted for the run (`outbound.rate_limit_per_s`).

    python bench/workers.py --events 4000
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import yaml
from _common import emit, parser, peak_rss_mb, rate
from rich.console import Console
from rich.table import Table

from connectors.filedrop import FiledropConnector
from hub.spi import Delta
from hub.store.open import open_store
from projections import outbound

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' harness and firm
from tests import kafka_broker
from tests.integration.conftest import MAPPING, PEOPLE, config_for, entries

BATCH = 200


def firm(root: Path, n: int, bootstrap: str) -> Path:
    """A firm's folder with `n` entries, synced once (its writes planned and published)."""
    (root / "inbox").mkdir(parents=True)
    (root / "outbox").mkdir()
    config = config_for(root)
    prefix = f"b{uuid.uuid4().hex[:8]}."
    config["kafka"] = {
        "bootstrap_servers": bootstrap,
        "topic_prefix": prefix + "canonical.",
        "checkpoint_topic": prefix + "published",
        "transactional_id": prefix + "publisher",
        "outbound_prefix": prefix + "outbound.",
        "outbound_targets": ["erp"],
        "partitions": 6,
    }
    config["ingest"]["batch_size"] = 5000
    config["outbound"] = {"batch_size": BATCH, "rate_limit_per_s": 1_000_000}
    (root / "synchub.yaml").write_text(yaml.safe_dump(config))
    (root / "mapping.yaml").write_text(yaml.safe_dump(MAPPING))
    (root / "inbox" / "people_1.jsonl").write_text(
        "".join(
            json.dumps({"login": p, "name": p.title(), "code": p.upper()}) + "\n" for p in PEOPLE
        )
    )
    rows = entries(n)
    lines = ["id,person,day,minutes,text"] + [
        f"{r['id']},{r['person']},{r['day']},{r['minutes']},{r['text']}" for r in rows
    ]
    (root / "inbox" / "time_1.csv").write_text("\n".join(lines) + "\n")
    synced = cli(root, "sync", "--once", "--json")
    assert synced.returncode in (0, 2), synced.stderr
    return root


def cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hub.cli", *args, "--config", str(root / "synchub.yaml")],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def store_url(root: Path) -> str:
    return f"sqlite:///{root / 'synchub.db'}"


def pending(root: Path) -> list[Any]:
    store = open_store(store_url(root))
    try:
        with store.db.transaction(commit=False) as c:
            return outbound.in_flight(c, ["erp"])
    finally:
        store.close()


def applied(root: Path) -> int:
    store = open_store(store_url(root))
    try:
        with store.db.transaction(commit=False) as c:
            return int(outbound.counts(c).get("erp", {}).get("applied", 0))
    finally:
        store.close()


def baseline(rows: list[Any], scratch: Path) -> float:
    """Seconds the filedrop sink takes to write `rows` itself, in batches of BATCH."""
    sink = FiledropConnector("erp", {"outbox": "outbox"}, scratch).sink()
    assert sink is not None
    deltas = [
        Delta(r.target, r.object, r.canonical_id, r.target_key, r.op, json.loads(r.fields),
              r.idempotency_key, 1)
        for r in rows
    ]  # fmt: skip
    start = time.perf_counter()
    for i in range(0, len(deltas), BATCH):
        outcomes = sink.apply(deltas[i : i + BATCH])
        assert all(o.status == "applied" for o in outcomes)
    return time.perf_counter() - start


def workers(root: Path, k: int, total: int) -> float:
    """Seconds from the first write to the last outcome recorded, with `k` workers."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "hub.cli", "worker", "outbound", "--target", "erp",
             "--member", f"w{i}", "--config", str(root / "synchub.yaml")],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "COLUMNS": "200"},
        )
        for i in range(k)
    ]  # fmt: skip
    try:
        outbox = root / "outbox"
        while not any(outbox.iterdir()):
            time.sleep(0.01)
        start = time.perf_counter()
        while applied(root) < total:
            time.sleep(0.05)
        return time.perf_counter() - start
    finally:
        for p in procs:
            p.send_signal(2)
        for p in procs:
            p.communicate(timeout=60)


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.set_defaults(events=4000)
    p.add_argument("--bootstrap", help="an existing Kafka broker (default: start one)")
    args = p.parse_args()
    b = None if args.bootstrap else kafka_broker.start(own=True)
    bootstrap = args.bootstrap or (b.bootstrap if b else "")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            one, two = firm(Path(tmp, "one"), args.events, bootstrap), None
            rows = pending(one)
            total = len(rows)
            base_s = baseline(rows, Path(tmp, "raw"))
            one_s = workers(one, 1, total)
            two = firm(Path(tmp, "two"), args.events, bootstrap)
            two_s = workers(two, 2, total)
            for root in (one, two):
                lines = [
                    ln
                    for f in (root / "outbox").glob("*.jsonl")
                    for ln in f.read_text().splitlines()
                ]
                keys = {json.loads(ln)["idempotency_key"] for ln in lines}
                assert len(lines) == len(keys) == total, (root, len(lines), len(keys), total)
    finally:
        if b is not None:
            b.stop()
    per_1, per_2, base = rate(total, one_s), rate(total, two_s), rate(total, base_s)
    table = Table(title=f"{total:,} writes to a filedrop target")
    for col in ("", "seconds", "writes/s", "vs the sink itself"):
        table.add_column(col, justify="right")
    table.add_row("1 worker", f"{one_s:.2f}", f"{per_1:,.0f}", f"{per_1 / base:.3f}")
    table.add_row("2 workers", f"{two_s:.2f}", f"{per_2:,.0f}", f"{per_2 / base:.3f}")
    table.add_row("FiledropSink.apply", f"{base_s:.2f}", f"{base:,.0f}", "1")
    Console().print(table)
    emit(
        {
            "name": "outbound_workers_filedrop",
            "n": total,
            "per_s": per_2,
            "one_worker_per_s": per_1,
            "baseline_per_s": base,
            "ratio": round(per_2 / base, 3),
            "one_worker_ratio": round(per_1 / base, 3),
            "peak_rss_mb": peak_rss_mb(),
        }
    )


if __name__ == "__main__":
    main()
