"""SIGKILL the hub at every step between capture and write-back, restart, finish:
nothing lost, nothing duplicated — in the store or at the sink; on SQLite and PostgreSQL."""

from __future__ import annotations

import signal
from collections import Counter

import pytest

from hub.store.open import open_store
from tests.integration.conftest import Firm, entries

BOTH_BACKENDS = True

CRASH_POINTS = [
    "ingest.after_append:1",  # first batch + checkpoint committed, nothing after
    "ingest.after_append:4",  # mid-capture
    "projection.before_commit:1",  # rows written, transaction not committed
    "planner.after_append:1",  # deltas planned, planner position not stored
    "outbound.before_record:1",  # the sink wrote, the outcome is not recorded
    "outbound.before_record:3",
    "outbound.after_record:2",
]


def check_store(firm: Firm, n_entries: int) -> None:
    store = open_store(firm.store_url)
    try:
        facts = [e for e in store.read_all() if e.type == "SourceChanged"]
        per_stream = Counter(e.stream for e in facts)
        assert len([s for s in per_stream if "/time_entries/" in s]) == n_entries
        assert set(per_stream.values()) == {1}, "a source record was captured twice"
        planned = Counter(
            store.decode(e)["idempotency_key"] for e in store.read_all() if e.type == "DeltaPlanned"
        )  # type: ignore[index]
        assert set(planned.values()) == {1}, "a delta was planned twice"
    finally:
        store.close()


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_kill_and_restart_loses_nothing_and_duplicates_nothing(firm: Firm, point: str) -> None:
    firm.write_entries("time_1.csv", entries(160))
    firm.write_entries("time_2.csv", entries(140, start=160))
    crashed = firm.run("sync", "--once", crash_at=point)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    done = firm.run("sync", "--once", check=True)
    assert done.returncode == 0, done.stdout + done.stderr
    check_store(firm, 300)
    rows = firm.outbox_rows()
    keys = Counter(r["idempotency_key"] for r in rows)
    assert set(keys.values()) == {1}, "a write reached the sink twice"
    assert len(rows) == 150  # the approved half, each exactly once
    assert {r["canonical_id"] for r in rows} == {f"TimeEntry/e{i}" for i in range(0, 300, 2)}
    status = firm.json("status")
    assert status["outbound"]["erp"] == {
        "pending": 0,
        "retrying": 0,
        "applied": 150,
        "failed": 0,
        "resolved": 0,
        "ignored": 0,
    }
    assert all(p["behind"] == 0 for p in status["projections"].values())
    before = firm.json("checksum")["checksums"]
    firm.run("rebuild", check=True)
    assert firm.json("checksum")["checksums"] == before
