"""An idle pass plans nothing, writes nothing and appends no event, however many records the
targets hold: the filedrop sink (the real Tryton and TimeTagger sinks: test_workflows.py)."""

from __future__ import annotations

from hub.config import load_settings
from hub.engine import Hub
from tests.integration.conftest import Firm, entries

BOTH_BACKENDS = True


def test_after_posting_every_further_pass_is_idle(firm: Firm) -> None:
    firm.write_entries("time_1.csv", entries(60))
    hub = Hub(load_settings(firm.config))
    try:
        first = hub.sync_once()
        assert first.executed.applied == 30  # the approved half
        posted = len(firm.outbox_rows())
        for n in range(3):
            before = hub.store.head()
            report = hub.sync_once()
            assert report.errors == []
            assert report.planned.planned == 0, f"idle pass {n + 1} planned writes"
            assert report.executed.attempted == 0, f"idle pass {n + 1} wrote"
            assert hub.store.head() == before, f"idle pass {n + 1} appended events"
        assert len(firm.outbox_rows()) == posted
    finally:
        hub.close()
