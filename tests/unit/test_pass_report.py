"""A pass reports what it stored, also when a later step of the same connector fails: the
captured counts beside the error (issue 8: a pass that stored 2 updates said `0 … failed`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from hub.config import Settings
from hub.engine import Hub
from hub.ingest import IngestReport
from hub.spi import JSON, Batch, ConnectorError
from hub.testing import MemorySource, Wired
from tests.unit.test_ingest import ENTRY


def _hub(tmp_path: Path, source: MemorySource, batch_size: int = 1000) -> Hub:
    settings = Settings.model_validate(
        {"store": {"path": str(tmp_path / "hub.db")}, "ingest": {"batch_size": batch_size}}
    )
    return Hub(settings, {"tt": Wired(source)})


def test_a_refused_reconciliation_keeps_the_counts_of_the_changes_captured(
    tmp_path: Path,
) -> None:
    src = MemorySource("tracker", {"entries": ENTRY})
    for i in range(6):
        src.put("entries", str(i), {"id": str(i), "minutes": i})
    hub = _hub(tmp_path, src)
    try:
        assert hub.sync_once().ingest[0].appended == 6
        src.put("entries", "0", {"id": "0", "minutes": 100})
        src.put("entries", "1", {"id": "1", "minutes": 101})
        for i in range(2, 6):
            src._rows.pop(("entries", str(i)))  # hard deletes: 4 of 6, past the 50 % allowed
        (report,) = hub.ingest(reconcile=True)
        assert (report.appended, report.deleted_by_reconciliation) == (2, 0)
        assert report.reconcile_refused is not None
        assert "would delete 4 of 6" in report.reconcile_refused
        assert report.errors == [f"tt: {report.reconcile_refused}"]
        assert hub.last_errors["tt"] == report.reconcile_refused
    finally:
        hub.close()


class _FailsAfterOneBatch(MemorySource):
    def read(self, checkpoint: JSON | None, batch_size: int) -> Iterator[Batch]:
        batches = super().read(checkpoint, batch_size)
        yield next(batches)
        raise ConnectorError("tracker: connection reset while reading page 2")


def test_a_source_failing_halfway_keeps_the_counts_of_the_batches_stored(tmp_path: Path) -> None:
    src = _FailsAfterOneBatch("tracker", {"entries": ENTRY})
    for i in range(5):
        src.put("entries", str(i), {"id": str(i), "minutes": i})
    hub = _hub(tmp_path, src, batch_size=2)
    try:
        (report,) = hub.ingest()
        assert (report.batches, report.appended) == (1, 2)
        assert report.reconcile_refused is None
        assert report.errors == ["tt: tracker: connection reset while reading page 2"]
    finally:
        hub.close()


def test_a_refusal_in_the_echo_read_is_kept_when_the_reads_are_added() -> None:
    first = IngestReport("tt", batches=1, appended=2)
    echo = IngestReport("tt", appended=1, reconcile_refused="would delete 4 of 6")
    echo.errors.append("tt: would delete 4 of 6")
    first.add(echo)
    assert (first.appended, first.reconcile_refused) == (3, "would delete 4 of 6")
    assert first.errors == ["tt: would delete 4 of 6"]
    first.add(IngestReport("tt", appended=1))
    assert first.reconcile_refused == "would delete 4 of 6"
