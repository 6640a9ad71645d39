"""The Source and Sink contract suites against a real TimeTagger server (a fresh user each)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from connectors.timetagger import TimeTaggerSink
from connectors.timetagger.tags import hide
from hub.spi import Sink, Source
from tests.connectors.timetagger.conftest import T0, Account
from tests.contracts.sink_contract import SinkContract
from tests.contracts.source_contract import SourceContract


class _OnAccount:
    """Gives each contract test a fresh TimeTagger account as `self.account`."""

    account: Account

    @pytest.fixture(autouse=True)
    def _fresh_account(self, account: Account) -> None:
        self.account = account


class TestTimeTaggerRecordsSource(_OnAccount, SourceContract):
    """Records written as the TimeTagger app writes them; deletes are soft (HIDDEN)."""

    object_name = "records"

    def make_source(self, tmp_path: Path) -> Source:
        return self.account.connector().source()

    def write(self, object: str, key: str, record: dict[str, Any]) -> None:
        self.account.put(key, t1=record["t1"], t2=record["t2"], ds=record["ds"])

    def remove(self, object: str, key: str) -> None:
        current = self.account.record(key)
        assert current is not None
        self.account.put(key, t1=current["t1"], t2=current["t2"], ds=hide(current["ds"]))

    def sample(self, i: int) -> dict[str, Any]:
        t1 = T0 + 3600 * i
        return {"key": str(i), "t1": t1, "t2": t1 + (0 if i == 3 else 900 * i), "ds": f"#p{i}"}


class TestTimeTaggerTagsSource(_OnAccount, SourceContract):
    """Tag metadata in settings "taginfo #<tag>"; a delete is status "deleted"."""

    object_name = "tags"

    def make_source(self, tmp_path: Path) -> Source:
        return self.account.connector().source()

    def write(self, object: str, key: str, record: dict[str, Any]) -> None:
        self.account.put_setting(f"taginfo #{key}", record)

    def remove(self, object: str, key: str) -> None:
        self.account.put_setting(f"taginfo #{key}", {"status": "deleted"})

    def sample(self, i: int) -> dict[str, Any]:
        return {"name": f"Project {i}", "status": "open", "color": f"#00{i}0{i}0"}


class TestTimeTaggerRecordsSink(_OnAccount, SinkContract):
    object_name = "records"

    def make_sink(self, tmp_path: Path) -> Sink:
        return self.account.connector().sink()

    def fields(self, i: int) -> dict[str, Any]:
        t1 = T0 + 7200 * i
        return {"t1": t1, "t2": t1 + 1800, "ds": f"Work item {i} #acme/p{i} #billable"}

    def read_back(self, sink: Sink, target_key: str) -> dict[str, Any] | None:
        record = self.account.record(target_key)
        return None if record is None or record["ds"].startswith("HIDDEN") else record

    def count(self, sink: Sink) -> int:
        assert isinstance(sink, TimeTaggerSink)
        return sink.writes


class TestTimeTaggerTaginfoSink(_OnAccount, SinkContract):
    object_name = "taginfo"
    entity = "Project"

    def make_sink(self, tmp_path: Path) -> Sink:
        return self.account.connector().sink()

    def fields(self, i: int) -> dict[str, Any]:
        return {"name": f"Project {i}", "status": "open" if i % 2 else "closed", "budget": i}

    def read_back(self, sink: Sink, target_key: str) -> dict[str, Any] | None:
        setting = self.account.setting(f"taginfo #{target_key}")
        if setting is None or setting["value"].get("status") == "deleted":
            return None
        value: dict[str, Any] = setting["value"]
        return value

    def count(self, sink: Sink) -> int:
        assert isinstance(sink, TimeTaggerSink)
        return sink.writes
