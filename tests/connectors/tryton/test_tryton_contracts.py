"""The Source and Sink contract suites against a real Tryton server (fresh database per test)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from connectors.tryton import TrytonConnector
from connectors.tryton.sink import split_marker
from hub.contracts.sink import SinkContract
from hub.contracts.source import SourceContract
from hub.spi import Sink, Source
from tests.connectors.tryton.conftest import Erp, TrytonDB, TrytonSinkCase

TODAY = dt.date.today()
WRITES = (
    "model.timesheet.line.create",
    "model.timesheet.line.write",
    "model.timesheet.line.delete",
)


class TestTrytonTimesheetLineSource(SourceContract):
    """timesheet_lines: Tryton assigns the ids; hard deletes show only in current_keys."""

    object_name = "timesheet_lines"
    emits_deletes = False

    @pytest.fixture(autouse=True)
    def _database(self, tryton_db: TrytonDB) -> None:
        self.db = tryton_db

    def make_source(self, tmp_path: Path) -> Source:
        options = self.db.options(objects=["timesheet_lines"])
        source = TrytonConnector("erp", options, tmp_path).source()
        self.erp = Erp(source.client)  # one login per test: the world is built with it too
        self.employee = self.erp.employee()
        _, tasks = self.erp.project(self.erp.customer())
        self.tsw = self.erp.timesheet_work(tasks[0])
        return source

    def write(self, object: str, key: str, record: dict[str, Any]) -> str:
        line = self.erp.line(self.employee, self.tsw, record["hours"], record["description"])
        return str(line)

    def remove(self, object: str, key: str) -> None:
        self.erp.c.delete("timesheet.line", [int(key)])

    def sample(self, i: int) -> dict[str, Any]:
        return {"hours": 0.25 * (i + 1), "description": None if i % 3 == 0 else f"work {i}"}


class TestTrytonTimesheetLineSink(TrytonSinkCase, SinkContract):
    """timesheet_lines: created, updated, deleted and read back through RPC."""

    object_name = "timesheet_lines"
    entity = "TimeEntry"
    writes = WRITES

    def make_sink(self, tmp_path: Path) -> Sink:
        sink = self.open_sink(tmp_path)
        self.erp = Erp(sink.client)  # builds no timesheet lines: `count` stays the sink's
        self.employee = self.erp.employee()
        _, tasks = self.erp.project(self.erp.customer())
        self.works = [self.erp.timesheet_work(t) for t in tasks]
        return sink

    def fields(self, i: int) -> dict[str, Any]:
        return {
            "employee": self.employee,
            "work": self.works[i % 2],
            "date": (TODAY - dt.timedelta(days=i)).isoformat(),
            "hours": 0.5 + i,
            "description": f"entry {i}",
        }

    def read_back(self, sink: Sink, target_key: str) -> dict[str, Any] | None:
        rows = self.erp.c.search_read(
            "timesheet.line",
            [("id", "=", int(target_key))],
            ["employee", "work", "date", "duration", "description"],
        )
        if not rows:
            return None
        (row,) = rows
        return {
            "employee": row["employee"],
            "work": row["work"],
            "date": row["date"].isoformat(),
            "hours": row["duration"].total_seconds() / 3600,
            "description": split_marker(row["description"])[0],
        }
