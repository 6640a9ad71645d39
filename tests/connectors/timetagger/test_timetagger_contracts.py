"""The Source and Sink contract suites against a real TimeTagger server (a fresh user each), for
one account (`token`) and for two people's accounts (`accounts`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from connectors.timetagger import TimeTaggerSink
from connectors.timetagger.tags import hide
from hub.contracts.sink import SinkContract
from hub.contracts.source import SourceContract
from hub.spi import Sink, Source
from tests.connectors.timetagger.conftest import T0, Account, Team


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

    def reopen(self, sink: Sink, tmp_path: Path) -> Sink:
        return self.make_sink(tmp_path)  # the same account(s) on the same server

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

    def reopen(self, sink: Sink, tmp_path: Path) -> Sink:
        return self.make_sink(tmp_path)  # the same account(s) on the same server

    def count(self, sink: Sink) -> int:
        assert isinstance(sink, TimeTaggerSink)
        return sink.writes


# -- two accounts (`accounts: {alice: ..., bob: ...}`) --------------------------------------------

PEOPLE = ("alice", "bob")


class _OnTeam:
    """Gives each contract test two fresh TimeTagger accounts as `self.team`."""

    team: Team

    @pytest.fixture(autouse=True)
    def _fresh_team(self, team: Team) -> None:
        self.team = team


class TestTimeTaggerRecordsSourceTwoAccounts(_OnTeam, SourceContract):
    """Even samples in alice's account, odd ones in bob's; keys are `<person>/<record key>`."""

    object_name = "records"

    def make_source(self, tmp_path: Path) -> Source:
        return self.team.connector().source()

    def write(self, object: str, key: str, record: dict[str, Any]) -> str:
        person = PEOPLE[int(key) % 2]
        self.team[person].put(key, t1=record["t1"], t2=record["t2"], ds=record["ds"])
        return f"{person}/{key}"

    def remove(self, object: str, key: str) -> None:
        person, key = key.split("/", 1)
        current = self.team[person].record(key)
        assert current is not None
        self.team[person].put(key, t1=current["t1"], t2=current["t2"], ds=hide(current["ds"]))

    def sample(self, i: int) -> dict[str, Any]:
        t1 = T0 + 3600 * i
        return {"key": str(i), "t1": t1, "t2": t1 + 900, "ds": f"#p{i}"}


class TestTimeTaggerRecordsSinkTwoAccounts(_OnTeam, SinkContract):
    """Creates name their account in `person` (records 0, 1, 4 alice's; 2, 3 bob's)."""

    object_name = "records"

    def make_sink(self, tmp_path: Path) -> Sink:
        return self.team.connector().sink()

    def fields(self, i: int) -> dict[str, Any]:
        t1 = T0 + 7200 * i
        return {"t1": t1, "t2": t1 + 1800, "ds": f"Item {i} #p{i}", "person": PEOPLE[i // 2 % 2]}

    def read_back(self, sink: Sink, target_key: str) -> dict[str, Any] | None:
        person, key = target_key.split("/", 1)
        record = self.team[person].record(key)
        if record is None or record["ds"].startswith("HIDDEN"):
            return None
        return {**record, "person": person}

    def reopen(self, sink: Sink, tmp_path: Path) -> Sink:
        return self.make_sink(tmp_path)  # the same account(s) on the same server

    def count(self, sink: Sink) -> int:
        assert isinstance(sink, TimeTaggerSink)
        return sink.writes


class TestTimeTaggerTaginfoSinkTwoAccounts(_OnTeam, SinkContract):
    """Every delta is written to both accounts: they must read back the same."""

    object_name = "taginfo"
    entity = "Project"

    def make_sink(self, tmp_path: Path) -> Sink:
        return self.team.connector().sink()

    def fields(self, i: int) -> dict[str, Any]:
        return {"name": f"Project {i}", "status": "open" if i % 2 else "closed"}

    def read_back(self, sink: Sink, target_key: str) -> dict[str, Any] | None:
        states = []
        for person in PEOPLE:
            setting = self.team[person].setting(f"taginfo #{target_key}")
            deleted = setting is None or setting["value"].get("status") == "deleted"
            states.append(None if setting is None or deleted else setting["value"])
        assert states[0] == states[1], f"the accounts differ: {states}"
        return states[0]

    def reopen(self, sink: Sink, tmp_path: Path) -> Sink:
        return self.make_sink(tmp_path)  # the same account(s) on the same server

    def count(self, sink: Sink) -> int:
        """Writes per account (each delta is one write in each)."""
        assert isinstance(sink, TimeTaggerSink)
        alice, bob = (sink.writers[person].writes for person in PEOPLE)
        assert alice == bob
        return alice
