"""Several hubs on one store: the projections are applied by one process at a time (a claim in
the database); a process that finds them moved on by another goes on from there, so nothing
is applied twice and the tables equal a clean rebuild. On SQLite and PostgreSQL."""

from __future__ import annotations

import threading

from hub.config import load_settings
from hub.engine import Hub
from projections import Projector
from tests.integration.conftest import Firm, entries

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
