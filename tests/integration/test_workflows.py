"""The two workflows against real Tryton and TimeTagger servers (session-scoped, fresh
databases and accounts per test): projects/tasks → TimeTagger tags; approved, valid entries →
Tryton timesheet lines; invalid ones → exceptions and #sync-error in TimeTagger."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from connectors.timetagger.client import TimeTaggerClient
from connectors.timetagger.localserver import TimeTaggerServer
from demo.seed import WEEK, seed_erp, seed_tracker
from hub import queries
from hub.config import load_settings
from hub.engine import Hub
from tests.connectors.timetagger.conftest import timetagger_python, timetagger_server  # noqa: F401
from tests.connectors.tryton.conftest import TrytonDB, tryton_db, tryton_session  # noqa: F401

MAPPING = Path(__file__).resolve().parents[2] / "demo" / "mapping.yaml"
PEOPLE = ("alice", "bob", "carol")
BOTH_BACKENDS = True


class Firm:
    def __init__(self, tmp: Path, erp: TrytonDB, tt: TimeTaggerServer, store_url: str = "") -> None:
        self.tmp, self.erp_db, self.tt = tmp, erp, tt
        self.erp = erp.client()
        seed_erp(self.erp)
        suffix = uuid.uuid4().hex[:6]
        self.tokens = {p: tt.token(f"{p}-{suffix}") for p in PEOPLE}
        self.config = tmp / "synchub.yaml"
        (tmp / "mapping.yaml").write_text(MAPPING.read_text())
        self.config.write_text(
            yaml.safe_dump(
                {
                    "store": {"url": store_url} if store_url else {"path": "./synchub.db"},
                    "mapping": "./mapping.yaml",
                    "connectors": {
                        "erp": {"type": "tryton", **erp.options(), "lag": 60},
                        "tracker": {
                            "type": "timetagger",
                            "url": tt.url,
                            "accounts": self.tokens,
                            "lag": 10,
                        },
                    },
                    "ingest": {"reconcile_every": 0},
                    "outbound": {"max_wait": 5, "base_delay": 0.05},
                }
            )
        )
        self.clients = {p: TimeTaggerClient(tt.url, t) for p, t in self.tokens.items()}

    def hub(self) -> Hub:
        return Hub(load_settings(self.config))

    def sync(self) -> Any:
        hub = self.hub()
        try:
            return hub.sync_once()
        finally:
            hub.close()

    def head(self) -> int:
        hub = self.hub()
        try:
            return hub.store.head()
        finally:
            hub.close()

    def assert_idle(self, passes: int = 3) -> None:
        """Nothing changed anywhere: each further pass plans nothing, writes nothing and
        appends no event (a sync runs forever)."""
        for n in range(passes):
            before = self.head()
            report = self.sync()
            assert report.errors == []
            assert report.planned.planned == 0, f"idle pass {n + 1} planned writes"
            assert report.executed.attempted == 0, f"idle pass {n + 1} wrote"
            hub = self.hub()
            try:
                new = [(e.stream, e.type) for e in hub.store.read(before, limit=100)]
            finally:
                hub.close()
            assert new == [], f"idle pass {n + 1} appended events"

    def lines(self) -> list[dict[str, Any]]:
        return self.erp.search_read(
            "timesheet.line", [], ["employee.party.code", "date", "duration", "work.rec_name"]
        )

    def records(self, person: str) -> dict[str, dict[str, Any]]:
        return {r["key"]: r for r in self.clients[person].updates(0).records}

    def exceptions(self) -> list[dict[str, Any]]:
        hub = self.hub()
        try:
            hub.projector.catch_up()
            return queries.exceptions(hub.store)
        finally:
            hub.close()


@pytest.fixture
def firm(
    tmp_path: Path,
    tryton_db: TrytonDB,  # noqa: F811
    timetagger_server: TimeTaggerServer,  # noqa: F811
    store_url: str,
) -> Firm:
    return Firm(tmp_path, tryton_db, timetagger_server, store_url)


def booked_week(firm: Firm) -> dict[str, str]:
    """Seed the week; → record key (person/key) per entry text."""
    seed_tracker(firm.clients, dt.date.today())
    keys = {}
    for person in PEOPLE:
        for key, rec in firm.records(person).items():
            keys[rec["ds"]] = f"{person}/{key}"
    return keys


def test_projects_and_tasks_become_timetagger_tags(firm: Firm) -> None:
    report = firm.sync()
    assert report.errors == []
    for person in PEOPLE:
        settings = {s["key"]: s["value"] for s in firm.clients[person].settings()}
        tags = {
            k.removeprefix("taginfo #"): v for k, v in settings.items() if k.startswith("taginfo #")
        }
        assert {
            "acme/website-relaunch",
            "acme/website-relaunch/design",
            "acme/website-relaunch/launch",
            "globex/data-platform",
            "globex/data-platform/pipeline",
        } <= set(tags)
        assert tags["acme/website-relaunch/design"]["status"] == "open"
        assert tags["acme/website-relaunch/launch"]["status"] == "closed"
        assert tags["globex/data-platform"]["name"] == "Data platform"
    firm.assert_idle()  # the tags come back through the tracker's source: no echo writes


def test_approved_valid_entries_are_posted_and_invalid_ones_flagged(firm: Firm) -> None:
    firm.sync()
    keys = booked_week(firm)
    report = firm.sync()
    assert report.errors == []
    lines = firm.lines()
    expected = [e for e in WEEK if e.expect == "posted"]
    assert len(lines) == len(expected) == 6
    posted = Counter(
        (ln["employee."]["party."]["code"], round(ln["duration"].total_seconds() / 3600, 2))
        for ln in lines
    )
    assert posted == Counter((e.person, e.hours) for e in expected)
    open_ = firm.exceptions()
    kinds = Counter(x["kind"] for x in open_)
    assert kinds == {"plan": 5, "mapping": 1}
    messages = " | ".join(x["message"] for x in open_)
    for check in (
        "the task is open",
        "the task exists in the ERP",
        "the duration is positive",
        "the date is not in the future",
    ):
        assert f"not satisfied: {check}" in messages
    assert "'#acme//build' is malformed" in messages
    flagged = {
        f"{p}/{k}" for p in PEOPLE for k, r in firm.records(p).items() if "#sync-error" in r["ds"]
    }
    invalid = {keys[e.text] for e in WEEK if e.expect.startswith(("refused", "mapping error"))}
    assert flagged == invalid  # refused by a check, or not even mappable (a malformed tag)
    firm.assert_idle()


def test_fixes_edits_and_unapprovals_follow_through(firm: Firm) -> None:
    firm.sync()
    keys = booked_week(firm)
    firm.sync()
    zero = next(e for e in WEEK if e.expect == "refused: zero duration")
    person, key = keys[zero.text].split("/")
    rec = firm.records(person)[key]
    fixed = {**rec, "t2": rec["t1"] + 3600, "mt": rec["mt"] + 1000}
    fixed["ds"] = fixed["ds"].replace("#sync-error", "").strip()
    firm.clients[person].put_records([fixed])
    edit = next(e for e in WEEK if e.expect == "posted" and e.person == "alice")
    a_person, a_key = keys[edit.text].split("/")
    arec = firm.records(a_person)[a_key]
    firm.clients[a_person].put_records(
        [{**arec, "t2": arec["t1"] + 2 * 3600, "mt": arec["mt"] + 1000}]
    )
    unapprove = next(e for e in WEEK if e.expect == "posted" and e.person == "bob")
    b_person, b_key = keys[unapprove.text].split("/")
    brec = firm.records(b_person)[b_key]
    firm.clients[b_person].put_records(
        [{**brec, "ds": brec["ds"].replace("#approved", ""), "mt": brec["mt"] + 1000}]
    )
    report = firm.sync()
    assert report.errors == []
    hours = sorted(round(ln["duration"].total_seconds() / 3600, 2) for ln in firm.lines())
    # +1 h (the fixed zero entry), alice's 3 h → 2 h, bob's un-approved entry removed
    want = sorted(
        [e.hours for e in WEEK if e.expect == "posted" and e is not edit and e is not unapprove]
        + [2.0, 1.0]
    )
    assert hours == want
    assert "#sync-error" not in firm.records(person)[key]["ds"]
    assert all("duration is positive" not in x["message"] for x in firm.exceptions())
    firm.assert_idle()


def test_unapproving_an_invoiced_line_asks_for_a_credit_note(firm: Firm) -> None:
    firm.sync()
    keys = booked_week(firm)
    firm.sync()
    (project,) = firm.erp.search(
        "project.work", [("type", "=", "project"), ("name", "=", "Data platform")]
    )
    firm.erp.button("project.work", "invoice", [project])
    bob = next(e for e in WEEK if e.expect == "posted" and e.person == "bob")
    person, key = keys[bob.text].split("/")
    rec = firm.records(person)[key]
    firm.clients[person].put_records(
        [{**rec, "ds": rec["ds"].replace("#approved", ""), "mt": rec["mt"] + 1000}]
    )
    firm.sync()
    writes = [x for x in firm.exceptions() if x["kind"] == "write"]
    assert len(writes) == 1 and "credit note" in writes[0]["message"]
    assert len(firm.lines()) == 6  # nothing half-applied: the invoiced line is still there
    firm.assert_idle()


def test_sigkill_mid_sync_then_restart_posts_each_line_once(firm: Firm) -> None:
    firm.sync()
    booked_week(firm)
    env = {**os.environ, "SYNCHUB_CRASH_AT": "outbound.before_record:1"}
    crashed = subprocess.run(
        [sys.executable, "-m", "hub.cli", "sync", "--once", "--config", str(firm.config)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    assert len(firm.lines()) >= 1  # the sink wrote before the crash; the outcome was lost
    env.pop("SYNCHUB_CRASH_AT")
    done = subprocess.run(
        [sys.executable, "-m", "hub.cli", "sync", "--once", "--config", str(firm.config)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2, done.stdout + done.stderr  # open exceptions: the invalid entries
    lines = firm.lines()
    assert len(lines) == 6, "a timesheet line was posted twice"
    check = subprocess.run(
        [sys.executable, "-m", "hub.cli", "checksum", "--json", "--config", str(firm.config)],
        capture_output=True,
        text=True,
    )
    subprocess.run(
        [sys.executable, "-m", "hub.cli", "rebuild", "--config", str(firm.config)],
        capture_output=True,
        text=True,
        check=True,
    )
    again = subprocess.run(
        [sys.executable, "-m", "hub.cli", "checksum", "--json", "--config", str(firm.config)],
        capture_output=True,
        text=True,
    )
    assert check.stdout == again.stdout
    firm.assert_idle()


def test_renaming_a_consultant_in_the_erp_renames_the_person(firm: Firm) -> None:
    """The employee's name is its party's: a rename touches only the party in Tryton."""
    firm.sync()
    (party,) = firm.erp.search("party.party", [("code", "=", "alice")])
    firm.erp.write("party.party", [party], {"name": "Alice Renamed"})
    assert firm.sync().errors == []
    hub = firm.hub()
    try:
        hub.projector.catch_up()
        person = queries.state(hub.store, "Person/alice")
    finally:
        hub.close()
    assert person["fields"]["full_name"] == "Alice Renamed"
    firm.assert_idle()


def test_outbound_workers_post_each_line_once_when_one_is_killed(
    firm: Firm, kafka: dict[str, Any]
) -> None:
    """Distributed mode against the real Tryton: `synchub run` plans and publishes, two
    `synchub worker outbound --target erp` write; the first is SIGKILLed after Tryton took
    its first line and before the outcome was recorded; the other takes over. Each line is in
    Tryton once, each outcome recorded once, and idle passes do nothing."""
    from tests.integration.conftest import wait_for
    from tests.integration.test_outbound_workers import _assigned, _outcomes_in, _stop

    firm.sync()
    config = yaml.safe_load(firm.config.read_text())
    config["kafka"] = {**kafka, "outbound_targets": ["erp"], "partitions": 4}
    config["poll_interval"] = 0.5
    firm.config.write_text(yaml.safe_dump(config))
    group = kafka["outbound_prefix"] + "erp"

    def start(*args: str, **env: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "hub.cli", *args, "--config", str(firm.config)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **env},
        )  # fmt: skip

    hub = start("run")
    a = start(
        "worker", "outbound", "--target", "erp", "--member", "a",
        SYNCHUB_CRASH_AT="outbound.before_record:1",
    )  # fmt: skip
    b = None
    try:
        assert wait_for(lambda: _assigned(kafka, group).get("a"), 60)
        booked_week(firm)
        b = start("worker", "outbound", "--target", "erp", "--member", "b")
        assert wait_for(lambda: a.poll() is not None, 180)
        assert a.returncode == -signal.SIGKILL  # Tryton has the line, the store no outcome
        assert wait_for(lambda: len(firm.lines()) >= 6 and _erp_settled(firm) >= 6, 180)
    finally:
        logs = _stop(hub, a, b)
    lines = firm.lines()
    assert len(lines) == 6, "a timesheet line was posted twice"
    outcomes = _outcomes_in(firm.config)
    erp = {k: n for (target, k), n in outcomes.items() if target == "erp"}
    assert len(erp) == 6 and set(erp.values()) == {1}, erp
    assert any("stopped cleanly" in log for log in logs)
    # the workers' lines are read back from Tryton by the hub's next poll; `run` may have been
    # stopped before it came (CI43 saw it): one pass captures them and writes nothing
    echo = firm.sync()
    assert echo.planned.planned == 0 and echo.executed.attempted == 0
    assert len(firm.lines()) == 6
    firm.assert_idle()


def _erp_settled(firm: Firm) -> int:
    hub = firm.hub()
    try:
        hub.projector.catch_up()
        counts = queries.status(hub.store, hub.projector, [])["outbound"].get("erp", {})
        return int(counts.get("applied", 0))
    finally:
        hub.close()
