"""Where each query is a round trip (PostgreSQL), a row cache that misses often reads its
table's keys once (RowCache.know_all) and answers later misses from them: the projections
stay exactly what a rebuild makes, for new records and for changes to existing ones."""

from __future__ import annotations

import pytest

from hub.config import load_settings
from hub.engine import Hub
from projections import tables
from tests.integration.conftest import Firm, entries, firm  # noqa: F401


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_a_catch_up_that_reads_the_keys_once_equals_a_rebuild(
    firm: Firm,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tables, "SCAN_AFTER", 5)  # at once, not after 200 misses
    firm.write_entries("time_1.csv", entries(150))
    hub = Hub(load_settings(firm.config))
    try:
        hub.sync_once()
        scanned = [c for c in hub.projector.fold.ctx.caches if c.complete]
        assert {c.table.name for c in scanned} >= {"canonical", "links"}
        once = hub.projector.checksums()
        later = entries(60, start=100)  # 50 of them changed, 10 new
        for row in later:
            row["minutes"] += 7
        firm.write_entries("time_2.csv", later)
        hub.sync_once()
        again = hub.projector.checksums()
        assert again != once
        assert hub.store.head() == hub.projector.position()
        hub.projector.rebuild()
        assert hub.projector.checksums() == again
    finally:
        hub.close()
