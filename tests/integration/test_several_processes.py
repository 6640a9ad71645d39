"""Several hubs on one store: the projections are applied by one process at a time (a claim in
the database); a process that finds them moved on by another goes on from there, so nothing
is applied twice and the tables equal a clean rebuild. On SQLite and PostgreSQL."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections import Counter

import yaml

from hub.config import load_settings
from hub.engine import Hub
from projections import Projector
from tests.integration.conftest import Firm, entries, wait_for
from tests.integration.test_crash_safety import check_store

BOTH_BACKENDS = True


def test_two_hubs_catching_up_at_once_apply_every_event_once(firm: Firm) -> None:
    firm.write_entries("time_1.csv", entries(40))
    first, second = Hub(load_settings(firm.config)), Hub(load_settings(firm.config))
    try:
        first.sync_once()
        for n in range(3):  # captured by one, projected by both at once
            firm.write_entries(f"time_{n + 2}.csv", entries(120, start=40 + 120 * n))
            first.ingest()
            head, before = first.store.head(), first.projector.position()
            assert head > before
            applied: list[int] = []
            go = threading.Barrier(2)

            threads = [
                threading.Thread(target=_catch_up, args=(h, go, applied)) for h in (first, second)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=120)
            assert first.projector.position() == second.projector.position() == head
            assert sum(applied) == head - before, applied  # each event applied once, by one
        together = first.projector.checksums()
        assert second.projector.checksums() == together
        fresh = Projector(first.store)
        fresh.rebuild()
        assert fresh.checksums() == together  # equal to one process doing it all
    finally:
        first.close()
        second.close()


def _catch_up(hub: Hub, go: threading.Barrier, applied: list[int]) -> None:
    hub.projector.page = 7  # many small transactions, started at once
    go.wait()
    applied.append(hub.projector.catch_up())


def test_a_killed_hub_process_hands_its_work_over_within_the_lease_time(firm: Firm) -> None:
    """Two `synchub run` processes ("hosts" a and b); a works, b waits; a is killed (SIGKILL)
    in the middle of writing to the target; b takes every piece of work over once a's leases
    expire, and finishes: each entry captured once and written once, outcomes recorded once."""
    config = yaml.safe_load(firm.config.read_text())
    config["poll_interval"] = 0.2
    config["store"]["lease_seconds"] = 3
    config["outbound"]["rate_limit_per_s"] = 40  # writing takes a while: a dies during it
    firm.config.write_text(yaml.safe_dump(config))
    firm.write_entries("time_1.csv", entries(20))
    a = firm.start(
        "run",
        env={"SYNCHUB_PROCESS_NAME": "node-a", "SYNCHUB_CRASH_AT": "outbound.before_record:3"},
    )
    b: subprocess.Popen[str] | None = None
    try:
        assert wait_for(lambda: len(firm.outbox_rows()) >= 1, 60), a.stderr
        b = firm.start("run", env={"SYNCHUB_PROCESS_NAME": "node-b"})
        assert wait_for(lambda: _holders(firm) and not _holders(firm) - {"node-a"}, 30)
        firm.write_entries("time_2.csv", entries(200, start=20))
        a.wait(timeout=120)  # it kills itself mid-write (the sink wrote, no outcome recorded)
        assert a.returncode == -signal.SIGKILL
        killed = time.monotonic()
        assert wait_for(lambda: _holders(firm) == {"node-b"}, 30)
        handed_over = time.monotonic() - killed
        # at once (its PID is gone on this host), at most the lease time, a poll and slack
        assert handed_over <= 3 + 0.2 + 5
        assert wait_for(lambda: len(firm.outbox_rows()) >= 110, 120)
        assert wait_for(lambda: firm.json("status")["outbound"]["erp"]["applied"] == 110, 60)
    finally:
        for proc in (a, b):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                proc.communicate(timeout=60)
    rows = firm.outbox_rows()
    assert set(Counter(r["idempotency_key"] for r in rows).values()) == {1}
    assert {r["canonical_id"] for r in rows} == {f"TimeEntry/e{i}" for i in range(0, 220, 2)}
    check_store(firm, 220)  # each fact once, each delta planned once
    status = firm.json("status")
    assert status["outbound"]["erp"]["pending"] == status["outbound"]["erp"]["retrying"] == 0
    assert status["leases"] == []  # b stopped cleanly: it gave everything up
    before = firm.json("checksum")["checksums"]
    firm.run("rebuild", check=True)
    assert firm.json("checksum")["checksums"] == before


def _holders(firm: Firm) -> set[str]:
    """The process names holding live leases."""
    leases = firm.json("status")["leases"]
    return {x["holder"].split("@")[0] for x in leases if not x["expired"]}
