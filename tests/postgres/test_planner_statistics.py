"""After a catch-up of many events (and after a rebuild), the projections' tables on
PostgreSQL have planner statistics: the change feed's and the states' queries are planned for
the rows there are, not for empty tables (autovacuum comes a minute or more later)."""

from __future__ import annotations

import pytest

from hub.config import load_settings
from hub.engine import Hub
from projections import runner
from tests.integration.conftest import Firm, entries, firm  # noqa: F401


def _analyzed(hub: Hub) -> dict[str, float]:
    """reltuples of each live projection table (-1: never analyzed)."""
    with hub.store.db.transaction(commit=False) as c:
        c.execute(
            "SELECT relname, reltuples FROM pg_class WHERE relname IN ('p_audit', 'p_canonical')"
        )
        return {name: float(n) for name, n in c.fetchall()}


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_a_big_catch_up_and_a_rebuild_leave_the_tables_analyzed(
    firm: Firm,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    firm.write_entries("time_1.csv", entries(40))
    hub = Hub(load_settings(firm.config))
    try:
        hub.sync_once()  # fewer events than ANALYZE_AFTER: left to autovacuum
        assert _analyzed(hub) == {"p_audit": -1.0, "p_canonical": -1.0}
        monkeypatch.setattr(runner, "ANALYZE_AFTER", 10)
        firm.write_entries("time_2.csv", entries(30, start=40))
        hub.sync_once()
        counts = _analyzed(hub)
        assert counts["p_audit"] >= 70 and counts["p_canonical"] >= 70
        hub.projector.rebuild()  # new tables: analyzed before they are swapped in
        assert _analyzed(hub) == counts
    finally:
        hub.close()
