"""Outbound workers benchmark: a target's writes done by 1 and by 2 `synchub worker outbound`
processes (one Kafka consumer group), against the target's own client writing the same deltas.

A firm's folder with N time entries, half of them approved: `synchub sync --once` captures,
projects, plans N/2 writes and publishes them for the workers (kafka.outbound_targets: [erp];
not timed). The `erp` target is
  filedrop  (default) tests/integration/conftest.py's firm: a filedrop tracker and outbox
  tryton    a real Tryton server (the tests' harness; bench/_workers_tryton.py), one fresh
            seeded database per firm and one for the baseline
Then, timed:
  workers   k processes `synchub worker outbound --target erp` (k = 1, then 2, each on a firm
            of its own): from the first write in the target to the last outcome recorded in
            the store (their start and group join are not in it)
  baseline  the same deltas written by the target's sink itself (the class the worker uses,
            its apply() in batches of `outbound.batch_size`) into a scratch outbox / database
The rate limit per target is lifted for the run (`outbound.rate_limit_per_s`). At the end each
write must be in the target exactly once (lines and idempotency keys, or Tryton's lines and
their markers), else the script fails; so does a run where no write settles for STALL seconds.
`--join-first`: the 2-worker firm's entries arrive (synced, published) only once both workers
hold partitions; otherwise the first to join may take the whole backlog (up to 500 messages a
batch) before a rebalance. `--profile FILE`: the 1-worker process runs under cProfile.
Tryton: keep N/2 below 498, since a worker sends up to 500 writes to one TrytonSink.apply and
the sink's marker search for more than 497 creates is too deep for Tryton on SQLite (the
worker then retries for ever; the run fails after STALL).

    python bench/workers.py --events 4000
    python bench/workers.py --target tryton --events 980 [--join-first]   (a few minutes)
"""

from __future__ import annotations

import json
import os
import pstats
import re
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from _common import emit, parser, peak_rss_mb, rate
from rich.console import Console
from rich.table import Table

from connectors._kit.process import tail
from connectors.filedrop import FiledropConnector
from hub.spi import Delta, Sink
from hub.store.open import open_store
from projections import outbound

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' harness and firm
import _workers_tryton as tt

from tests import kafka_broker
from tests.integration.conftest import MAPPING, PEOPLE, config_for, entries
from tests.integration.test_outbound_workers import _assigned as assigned

BATCH = 200
STALL = 300.0
"""Seconds without a new outcome recorded (or a first write) after which a run fails."""
TRYTON = ("one", "two", "raw")
"""The Tryton databases: the 1-worker firm's, the 2-worker firm's, the baseline's."""
ENTRIES = ("time_1.csv", tt.ENTRIES)
"""The time entries' files in the firms' inboxes (filedrop mode's, tryton mode's)."""


def firm(root: Path, n: int, bootstrap: str, tryton: Any = None, now: bool = True) -> Path:
    """A firm's folder with `n` entries, synced once (its writes planned and published; if not
    `now`, without the entries: `release` them); its `erp` is the Tryton database `tryton` (a
    TrytonDB), else a filedrop outbox."""
    (root / "inbox").mkdir(parents=True)
    (root / "outbox").mkdir()
    config = filedrop_firm(root, n) if tryton is None else tt.firm_config(root, tryton, n)
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
    for f in [] if now else [f for f in (root / "inbox").iterdir() if f.name in ENTRIES]:
        f.rename(root / f.name)
    sync(root)
    return root


def release(root: Path) -> None:
    """The entries arrive in the inbox: synced, their writes published."""
    for name in ENTRIES:
        if (root / name).exists():
            (root / name).rename(root / "inbox" / name)
    sync(root)


def sync(root: Path) -> None:
    synced = cli(root, "sync", "--once", "--json")
    assert synced.returncode in (0, 2), synced.stderr


def filedrop_firm(root: Path, n: int) -> dict[str, Any]:
    """tests/integration/conftest.py's firm: its mapping, people and `n` entries; its config."""
    config = config_for(root)
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
    return config


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


def statuses(root: Path) -> dict[str, int]:
    """How many of the firm's writes to `erp` are in each status (applied, retrying, ...)."""
    store = open_store(store_url(root))
    try:
        with store.db.transaction(commit=False) as c:
            return outbound.counts(c).get("erp", {})
    finally:
        store.close()


def baseline(rows: list[Any], sink: Sink) -> float:
    """Seconds `sink` takes to write `rows` itself, in batches of BATCH (all must apply)."""
    deltas = [
        Delta(r.target, r.object, r.canonical_id, r.target_key, r.op, json.loads(r.fields),
              r.idempotency_key, 1)
        for r in rows
    ]  # fmt: skip
    try:
        start = time.perf_counter()
        for i in range(0, len(deltas), BATCH):
            outcomes = sink.apply(deltas[i : i + BATCH])
            assert all(o.status == "applied" for o in outcomes), outcomes
        return time.perf_counter() - start
    finally:
        sink.close()


REPORTED = re.compile(r"applied (\d+) · retried (\d+) · rejected (\d+) · already settled (\d+)")


def workers(
    root: Path, k: int, total: int, started: Callable[[], bool], poll: float, profile: str = "",
    join_first: bool = False,
) -> tuple[float, list[list[int]]]:  # fmt: skip
    """Seconds from the first write (`started()`, polled every `poll` s) to the last outcome
    recorded, with `k` workers; what each reported last: [applied, retried, rejected, settled].
    With `profile`, the first worker runs under cProfile, its stats saved there. With
    `join_first`, the firm is synced (its writes published) once every worker has partitions."""
    logs = [root / f"worker{i}.log" for i in range(k)]
    config = str(root / "synchub.yaml")
    procs = []
    for i, log in enumerate(logs):
        under = ["-m", "cProfile", "-o", profile] if profile and i == 0 else []
        command = [sys.executable, *under, "-m", "hub.cli", "worker", "outbound", "--target",
                   "erp", "--member", f"w{i}", "--config", config]  # fmt: skip
        with log.open("w") as out:
            env = {**os.environ, "COLUMNS": "200"}
            procs.append(subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env))
    deadline = time.monotonic() + STALL

    def alive() -> None:
        for p, log in zip(procs, logs, strict=True):
            if p.poll() is not None:
                raise RuntimeError(f"{log.stem} exited ({p.returncode}):\n{tail(log)}")
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"{k} worker(s): no write settled for {STALL:.0f} s; the writes' statuses "
                f"{statuses(root)}; {logs[0].stem}'s log:\n{tail(logs[0], 5)}"
            )

    try:
        if join_first:
            kafka = yaml.safe_load((root / "synchub.yaml").read_text())["kafka"]
            group = kafka["outbound_prefix"] + "erp"
            while sum(1 for ps in assigned(kafka, group).values() if ps) < k:
                alive()
                time.sleep(0.2)
            release(root)
            deadline = time.monotonic() + STALL
        while not started():
            alive()
            time.sleep(poll)
        start, done = time.perf_counter(), 0
        while done < total:
            alive()
            time.sleep(poll * 5)
            now = statuses(root).get("applied", 0)
            if now > done:
                done, deadline = now, time.monotonic() + STALL
        seconds = time.perf_counter() - start
    finally:
        for p in procs:
            p.send_signal(2)
        for p in procs:
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    last = [[(0, 0, 0, 0), *REPORTED.findall(log.read_text())][-1] for log in logs]
    return seconds, [[int(x) for x in counts] for counts in last]


def written(root: Path) -> Callable[[], bool]:
    """Whether the firm's filedrop outbox holds a write yet."""
    return lambda: any((root / "outbox").iterdir())


def run(tmp: Path, n: int, bootstrap: str, target: str, profile: str, join: bool) -> dict[str, Any]:
    """Baseline, 1 worker (under cProfile if `profile`), 2 workers (synced once both have
    partitions if `join`), what the target holds."""
    if target == "filedrop":
        one = firm(tmp / "one", n, bootstrap)
        rows = pending(one)
        base_s = baseline(rows, FiledropConnector("erp", {"outbox": "outbox"}, tmp / "raw").sink())
        ks = {1: workers(one, 1, len(rows), written(one), 0.01, profile)}
        two = firm(tmp / "two", n, bootstrap, now=not join)
        ks[2] = workers(two, 2, len(rows), written(two), 0.01, join_first=join)
        held = {}
        for name, root in (("1 worker", one), ("2 workers", two)):
            lines = [
                json.loads(ln)
                for f in root.glob("outbox/*.jsonl")
                for ln in f.read_text().splitlines()
            ]
            held[name] = (len(lines), len({x["idempotency_key"] for x in lines}))
        return {"total": len(rows), "base_s": base_s, "ks": ks, "held": held, "sink": "Filedrop"}
    session = tt.session(tmp)
    session.server.start()
    try:
        dbs = {name: tt.database(session, name) for name in TRYTON}
        one = firm(tmp / "one", n, bootstrap, dbs["one"])
        rows = pending(one)
        base_s = baseline(rows, tt.sink(dbs["raw"], dbs["one"], tmp / "raw"))
        ks = {1: workers(one, 1, len(rows), tt.started(dbs["one"]), 0.05, profile)}
        two = firm(tmp / "two", n, bootstrap, dbs["two"], now=not join)
        ks[2] = workers(two, 2, len(rows), tt.started(dbs["two"]), 0.05, join_first=join)
        labels = ("1 worker", "2 workers", "TrytonSink.apply")
        held = {label: tt.lines(dbs[name]) for label, name in zip(labels, TRYTON, strict=True)}
    except RuntimeError as e:
        raise RuntimeError(f"{e}\nthe Tryton server's log:\n{tail(session.server.log)}") from e
    finally:
        session.server.stop()
    return {"total": len(rows), "base_s": base_s, "ks": ks, "held": held, "sink": "Tryton"}


def main() -> int:
    p = parser(__doc__.splitlines()[0])
    p.set_defaults(events=None)  # 4000 (filedrop), 980 (tryton: 490 writes, see above)
    p.add_argument("--bootstrap", help="an existing Kafka broker (default: start one)")
    p.add_argument("--target", choices=("filedrop", "tryton"), default="filedrop",
                   help="the `erp` target: a filedrop outbox (default) or a real Tryton")  # fmt: skip
    p.add_argument("--join-first", action="store_true",
                   help="2 workers: publish the writes once both have partitions (not before)")  # fmt: skip
    args = p.parse_args()
    args.events = args.events or (980 if args.target == "tryton" else 4000)
    b = None if args.bootstrap else kafka_broker.start(own=True)
    bootstrap = args.bootstrap or (b.bootstrap if b else "")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            r = run(
                Path(tmp), args.events, bootstrap, args.target, args.profile or "", args.join_first
            )
    finally:
        if b is not None:
            b.stop()
    total, base = r["total"], rate(r["total"], r["base_s"])
    console = Console(width=120)
    table = Table(title=f"{total:,} writes to a {args.target} target")
    for col in ("", "seconds", "writes/s", "vs the sink itself", "applied / retried per worker"):
        table.add_column(col, justify="right")
    per_k: dict[str, Any] = {}
    for k, (seconds, counts) in r["ks"].items():
        per = rate(total, seconds)
        per_k[str(k)] = {
            "seconds": round(seconds, 2), "per_s": per, "ratio": round(per / base, 3),
            "applied": [c[0] for c in counts], "retried": [c[1] for c in counts],
        }  # fmt: skip
        done = ", ".join(f"{c[0]} / {c[1]}" for c in counts)
        label = f"{k} worker" + ("s" if k > 1 else "")
        table.add_row(label, f"{seconds:.2f}", f"{per:,.1f}", f"{per / base:.3f}", done)
    table.add_row(f"{r['sink']}Sink.apply", f"{r['base_s']:.2f}", f"{base:,.1f}", "1", "")
    console.print(table)
    if args.profile:  # the 1-worker process's, its timing slowed by the profiler
        pstats.Stats(args.profile, stream=sys.stderr).sort_stats("cumulative").print_stats(30)
    problems = []
    for label, (count, distinct) in r["held"].items():
        ok = count == distinct == total
        console.print(
            f"{label}: the target holds {count} writes, {distinct} distinct, want {total}"
        )
        if not ok:
            problems.append(f"{label}: {count} writes, {distinct} distinct, want {total} once each")
    for problem in problems:
        console.print(f"[red]FAILED[/red] {problem}")
    emit(
        {
            "name": f"outbound_workers_{args.target}",
            "n": total,
            "per_s": per_k["2"]["per_s"],
            "one_worker_per_s": per_k["1"]["per_s"],
            "baseline_per_s": base,
            "ratio": per_k["2"]["ratio"],
            "one_worker_ratio": per_k["1"]["ratio"],
            "workers": per_k,
            "held": {label: list(v) for label, v in r["held"].items()},
            "verified": not problems,
            "join_first": args.join_first,
            "peak_rss_mb": peak_rss_mb(),
        }
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
