"""The whole flow on the embedded store with in-memory connectors: capture → canonical state,
audit, links, exceptions → planned minimal deltas → idempotent writes with retries."""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from hub import queries
from hub.config import ConnectorSettings, OutboundSettings, Settings, StoreSettings
from hub.engine import Hub
from hub.errors import SyncHubError
from hub.outbound import ExecutorReport
from hub.outbound.executor import RateLimiter
from hub.testing import MemorySink, MemorySource, Wired
from hub.types import ObjectSchema

ENTRY = ObjectSchema(
    "entries",
    "id",
    {
        "type": "record",
        "name": "entry",
        "fields": [
            {"name": "id", "type": "string"},
            {"name": "user", "type": "string"},
            {"name": "minutes", "type": "long"},
            {"name": "day", "type": "string"},
            {"name": "text", "type": "string"},
        ],
    },
)
EMPLOYEE = ObjectSchema(
    "employees",
    "code",
    {
        "type": "record",
        "name": "employee",
        "fields": [
            {"name": "code", "type": "string"},
            {"name": "name", "type": "string"},
            {"name": "login", "type": "string"},
        ],
    },
)
LOGIN = ObjectSchema("logins", "login", EMPLOYEE.schema)
LINE = ObjectSchema(
    "lines",
    "id",
    {
        "type": "record",
        "name": "line",
        "fields": [
            {"name": "id", "type": "string"},
            {"name": "employee", "type": ["null", "string"], "default": None},
            {"name": "hours", "type": ["null", "double"], "default": None},
            {"name": "day", "type": ["null", "string"], "default": None},
            {"name": "work", "type": ["null", "string"], "default": None},
            {"name": "invoiced", "type": ["null", "boolean"], "default": None},
        ],
    },
)

MAPPING: dict[str, Any] = {
    "name": "default",
    "entities": {"TimeEntry": {"owner": "tracker"}, "Person": {"owner": "erp"}},
    "sources": [
        {
            "system": "tracker",
            "object": "entries",
            "entity": "TimeEntry",
            "id": "$key",
            "fields": {
                "person_id": "user | link Person erp logins",
                "minutes": "minutes",
                "date": "day | date",
                "project_id": "text | tag_path 0",
                "task_id": "text | tag_path 1",
                "approved": "text | has_tag approved",
                "billable": "text | has_tag billable",
                "description": "text | strip_tags",
            },
        },
        {
            "system": "erp",
            "object": "employees",
            "entity": "Person",
            "id": "code",
            "fields": {"full_name": "name", "employee_code": "code"},
        },
        {
            "system": "erp",
            "object": "logins",
            "entity": "Person",
            "id": "code",
            "fields": {"full_name": "name"},
        },
    ],
    "targets": [
        {
            "system": "erp",
            "object": "lines",
            "entity": "TimeEntry",
            "when": "approved",
            "fields": {
                "employee": "person_id | target_key erp",
                "hours": "minutes | div 60 | round 2",
                "day": "date",
                "work": "task_id",
            },
        },
    ],
}


BOTH_BACKENDS = True


@pytest.fixture(autouse=True)
def _backend(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(World, "store_url", store_url)


class World:
    store_url = ""
    """The store of the test's backend (set by `_backend` for each test)."""

    def __init__(self, tmp_path: Path, mapping: dict[str, Any] = MAPPING, **outbound: Any) -> None:
        self.tmp = tmp_path
        self.tracker = MemorySource("tracker", {"entries": ENTRY})
        self.tracker_sink = MemorySink("tracker")
        self.erp_src = MemorySource("erp", {"employees": EMPLOYEE, "logins": LOGIN, "lines": LINE})
        self.erp = MemorySink("erp")
        self.write_mapping(mapping)
        settings = Settings(
            store=StoreSettings(url=self.store_url or None, path=str(tmp_path / "hub.db")),
            mapping="mapping.yaml",
            base_dir=tmp_path,
            outbound=OutboundSettings(
                **{"base_delay": 0.01, "max_delay": 0.05, "max_wait": 2, **outbound}
            ),
        )
        self.hub = Hub(
            settings,
            {
                "tracker": Wired(self.tracker, self.tracker_sink),
                "erp": Wired(self.erp_src, self.erp),
            },
        )

    def write_mapping(self, mapping: dict[str, Any]) -> None:
        (self.tmp / "mapping.yaml").write_text(yaml.safe_dump(mapping))

    def person(self, code: str, name: str) -> None:
        self.erp_src.put("employees", code, {"code": code, "name": name, "login": code.lower()})
        self.erp_src.put(
            "logins", code.lower(), {"code": code, "name": name, "login": code.lower()}
        )

    def entry(self, key: str, text: str, minutes: int = 60, user: str = "ann") -> None:
        self.tracker.put(
            "entries",
            key,
            {"id": key, "user": user, "minutes": minutes, "day": "2026-11-20", "text": text},
        )

    def state(self, cid: str, **kw: Any) -> dict[str, Any]:
        return queries.state(self.hub.store, cid, **kw)

    def exceptions(self, status: str = "open") -> list[dict[str, Any]]:
        return queries.exceptions(self.hub.store, status)


def same_after_rebuild(w: World) -> None:
    """A rebuild gives the checksums the catch-up gave."""
    before = w.hub.projector.checksums()
    w.hub.projector.rebuild()
    assert w.hub.projector.checksums() == before


def erp_sets_the_project() -> dict[str, Any]:
    """MAPPING where the ERP's timesheet lines own TimeEntry.project_id (no targets)."""
    mapping: dict[str, Any] = json.loads(json.dumps(MAPPING))
    mapping["entities"]["TimeEntry"]["fields"] = {"project_id": "erp"}
    mapping["sources"].append(
        {
            "system": "erp",
            "object": "lines",
            "entity": "TimeEntry",
            "id": "id",
            "fields": {"project_id": "work"},
        }
    )
    mapping["targets"] = []
    return mapping


@pytest.fixture
def world(tmp_path: Path) -> World:
    w = World(tmp_path)
    yield w
    w.hub.close()


def test_approved_entries_reach_the_target_with_links_and_audit(world: World) -> None:
    world.person("ANN", "Ann Smith")
    world.entry("t1", "design review #acme/web/design #approved #billable", 90)
    world.entry("t2", "not yet #acme/web/design", 30)
    report = world.hub.sync_once()
    assert report.errors == [] and report.open_exceptions == 0
    t1 = world.state("TimeEntry/t1")
    assert t1["fields"] == {
        "person_id": "Person/ANN",
        "minutes": 90,
        "date": "2026-11-20",
        "project_id": "acme",
        "task_id": "web",
        "approved": True,
        "billable": True,
        "description": "design review",
    }
    # only the approved entry was written, with target-side field names and the employee's key
    assert list(world.erp.records.values()) == [
        {"employee": "ANN", "hours": 1.5, "day": "2026-11-20", "work": "web"}
    ]
    assert {(ln["system"], ln["role"]) for ln in t1["links"]} == {
        ("tracker", "source"),
        ("erp", "target"),
    }
    hist = queries.history(world.hub.store, "TimeEntry/t1")
    assert {h["field"] for h in hist} == set(t1["fields"])
    assert all(h["system"] == "tracker" and h["mapping_version"] == 1 for h in hist)
    # as it was when first mapped: the ERP line (a target link) did not exist yet
    then = world.state("TimeEntry/t1", position=hist[0]["position"])
    assert then["fields"] == t1["fields"]
    assert [(ln["system"], ln["role"]) for ln in then["links"]] == [("tracker", "source")]


def test_minimal_delta_then_compensating_delete_on_unapproval(world: World) -> None:
    world.person("ANN", "Ann")
    world.entry("t1", "x #acme/web/design #approved", 60)
    world.hub.sync_once()
    (target_key,) = world.erp.records
    world.entry("t1", "x #acme/web/design #approved", 120)  # only the duration changed
    world.hub.sync_once()
    last = list(world.erp.applied.values())[-1][1]
    assert (last.op, dict(last.fields), last.target_key) == ("update", {"hours": 2.0}, target_key)
    world.entry("t1", "x #acme/web/design", 120)  # un-approved
    world.hub.sync_once()
    last = list(world.erp.applied.values())[-1][1]
    assert (last.op, last.target_key) == ("delete", target_key)
    assert world.erp.records == {}
    again = world.hub.sync_once()  # nothing left to do: no further writes
    assert again.planned.planned == 0 and again.executed.attempted == 0


def test_echo_from_the_target_is_not_bounced_back(world: World) -> None:
    world.person("ANN", "Ann")
    world.entry("t1", "x #acme/web/design #approved", 60)
    world.hub.sync_once()
    ((key, fields),) = world.erp.records.items()
    writes = world.erp.writes
    # the ERP's own change feed now shows the line we wrote (echo)
    world.erp_src.put("lines", key, {"id": key, **fields})
    report = world.hub.sync_once()
    assert report.planned.planned == 0 and world.erp.writes == writes
    # someone edits the line in the ERP: desired differs from the captured state → corrected
    world.erp_src.put("lines", key, {"id": key, **fields, "hours": 9.0})
    world.hub.sync_once()
    assert world.erp.records[key]["hours"] == 1.0
    assert dict(list(world.erp.applied.values())[-1][1].fields) == {"hours": 1.0}


def test_fields_owned_by_the_target_are_never_written(tmp_path: Path) -> None:
    mapping = json.loads(json.dumps(MAPPING))
    mapping["entities"]["TimeEntry"]["fields"] = {"task_id": "erp"}  # ERP decides the task
    w = World(tmp_path, mapping)
    try:
        w.person("ANN", "Ann")
        w.entry("t1", "x #acme/web/design #approved", 60)
        w.hub.sync_once()
        assert "task_id" not in w.state("TimeEntry/t1")["fields"]  # tracker may not set it
        (fields,) = w.erp.records.values()
        assert "work" not in fields
    finally:
        w.hub.close()


def test_mapping_errors_become_exceptions_and_a_fixed_mapping_resolves_them(world: World) -> None:
    world.person("ANN", "Ann")
    world.entry("t1", "bad tag #acme//design #approved")
    world.entry("t2", "unknown person #acme/web/x #approved", user="zed")
    world.hub.sync_once()
    open_ = {x["key"]: x for x in world.exceptions()}
    assert set(open_) == {"t1", "t2"}
    assert open_["t1"]["kind"] == "mapping" and open_["t1"]["field"] == "project_id"
    assert "acme//design" in open_["t1"]["message"] and open_["t1"]["mapping_version"] == 1
    assert "no Person is linked to erp/logins/zed" in open_["t2"]["message"]
    assert world.erp.writes == 0
    # the person appears in the ERP: the waiting record is re-mapped by itself
    world.person("ZED", "Zed")
    world.hub.sync_once()
    assert world.hub.exception(open_["t2"]["id"])["status"] == "resolved"
    assert world.state("TimeEntry/t2")["fields"]["person_id"] == "Person/ZED"
    # retrying without a fix: still failing, counted again
    before = world.hub.exception(open_["t1"]["id"])["occurrences"]
    after = world.hub.act_on_exception(open_["t1"]["id"], "retry")
    assert (after["status"], after["occurrences"]) == ("open", before + 1)
    # a new mapping version that tolerates the bad tag: deploying it re-maps everything
    fixed = json.loads(json.dumps(MAPPING))
    fixed["sources"][0]["fields"]["project_id"] = "text | regex '#([a-z]+)/' 1"
    fixed["sources"][0]["fields"]["task_id"] = "text | regex '#[a-z]+/+([a-z]+)' 1"
    world.write_mapping(fixed)
    report = world.hub.sync_once()
    assert report.deployed == 2
    assert world.exceptions() == []
    assert world.state("TimeEntry/t1")["fields"]["project_id"] == "acme"
    assert world.erp.writes == 2
    with pytest.raises(SyncHubError, match="already resolved"):
        world.hub.act_on_exception(open_["t1"]["id"], "retry")


def test_retryable_failures_honour_retry_after_and_succeed(world: World) -> None:
    world.person("ANN", "Ann")
    world.entry("t1", "x #acme/web/design #approved")
    world.erp.fail_next(2, retry_after=0.3)
    started = time.monotonic()
    report = world.hub.sync_once()
    elapsed = time.monotonic() - started
    assert report.executed.applied == 1 and report.executed.retryable == 2
    assert elapsed >= 0.6  # two waits of Retry-After 0.3 s, longer than the 0.01 s backoff
    attempts = [world.hub.store.decode(e) for e in world.hub.store.read(types=["WriteAttempted"])]
    assert [(a["attempt"], a["status"], a["retry_after"]) for a in attempts] == [
        (1, "retryable", 0.3),
        (2, "retryable", 0.3),
        (3, "applied", None),
    ]
    assert len({a["idempotency_key"] for a in attempts}) == 1


def test_permanent_rejection_is_an_exception_and_retry_after_a_fix_applies(world: World) -> None:
    world.person("ANN", "Ann")
    world.entry("t1", "x #acme/web/design #approved")
    world.erp.reject_when(lambda d: "timesheet line refused: work 'web' is closed")
    report = world.hub.sync_once()
    assert report.executed.rejected == 1 and report.open_exceptions == 1
    (x,) = world.exceptions()
    assert x["kind"] == "write" and "work 'web' is closed" in x["message"]
    assert x["details"]["fields"]["work"] == "web"
    world.erp.reject_when(None)  # reopened in the ERP
    world.hub.act_on_exception(x["id"], "retry", note="task reopened")
    assert world.hub.exception(x["id"])["status"] == "resolved"
    assert len(world.erp.records) == 1


def test_retries_give_up_after_max_attempts(tmp_path: Path) -> None:
    w = World(tmp_path, max_attempts=3)
    try:
        w.person("ANN", "Ann")
        w.entry("t1", "x #acme/web/design #approved")
        w.erp.fail_next(10, reason="503 Service Unavailable")
        report = w.hub.sync_once()
        assert report.executed.rejected == 1
        (x,) = w.exceptions()
        assert "gave up after 3 attempts" in x["message"] and "503" in x["message"]
    finally:
        w.hub.close()


def test_rate_limiter_spaces_writes() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    limiter = RateLimiter(5, clock=lambda: now[0], sleep=sleep)
    limiter.acquire(15)
    assert sum(slept) == pytest.approx(2.0)  # a burst of 5, then 10 more at 5/s


def test_rebuild_is_identical_and_as_of_replays_history(world: World) -> None:
    world.person("ANN", "Ann")
    world.entry("t1", "x #acme/web/design #approved", 60)
    world.hub.sync_once()
    seen_then = world.state("TimeEntry/t1")
    time.sleep(0.05)
    moment = dt.datetime.now(dt.UTC)
    time.sleep(0.05)
    world.entry("t1", "x #acme/web/design #approved", 75)
    world.entry("t2", "y #acme/web/dev")
    world.hub.sync_once()
    assert world.state("TimeEntry/t1")["fields"]["minutes"] == 75
    assert world.state("TimeEntry/t1", as_of=moment)["fields"] == seen_then["fields"]
    assert not world.state("TimeEntry/t2", as_of=moment)["exists"]
    before = world.hub.projector.checksums()
    world.hub.projector.rebuild()
    assert world.hub.projector.checksums() == before
    world.hub.projector.rebuild(["audit"])
    assert world.hub.projector.checksums() == before


def test_rebuilt_tables_have_every_declared_index_and_the_history_reads_field_by_field(
    world: World,
) -> None:
    from projections import Projector
    from projections.runner import ALL_TABLES

    def indexes() -> dict[str, list[tuple[str, ...]]]:
        """Table → the column lists of its indexes, sorted (whatever their names; an index
        made twice shows twice)."""
        found: dict[str, list[tuple[str, ...]]] = {}
        db = world.hub.store.db
        with db.transaction(commit=False) as c:
            for t in ALL_TABLES:  # the database's own catalogue (dialect.index_columns)
                c.execute(db.dialect.index_columns, (t.physical(),))
                by_index: dict[str, list[str]] = {}
                for index, column in c.fetchall():
                    by_index.setdefault(index, []).append(column)
                for cols in by_index.values():
                    found.setdefault(t.physical(), []).append(tuple(cols))
        return {table: sorted(cols) for table, cols in found.items()}

    declared = {t.physical(): sorted(map(tuple, t.indexes)) for t in ALL_TABLES if t.indexes}
    world.person("ANN", "Ann")
    world.entry("t1", "x #acme/web/design #approved", 60)
    world.hub.sync_once()
    world.entry("t1", "x #acme/web/design #approved", 90)
    world.hub.sync_once()
    assert indexes() == declared
    history = queries.history(world.hub.store, "TimeEntry/t1")
    world.hub.projector.rebuild()  # the fresh tables keep their generation's index names
    assert indexes() == declared
    Projector(world.hub.store)  # on start: finds those indexes by their columns, adds none
    assert indexes() == declared
    assert queries.history(world.hub.store, "TimeEntry/t1") == history
    created = [h for h in history if h["op"] == "create"]
    updated = [h for h in history if h["op"] == "update"]
    assert {h["field"] for h in created} >= {"minutes", "approved", "project_id"}
    assert all(h["old"] is None for h in created)
    assert [(h["field"], h["old"], h["new"]) for h in updated] == [("minutes", 60, 90)]
    assert len({(h["position"], h["seq"]) for h in created}) == 1  # one audit row per change


def test_tables_of_an_older_version_are_rebuilt_when_the_projector_starts(world: World) -> None:
    from projections import Projector

    world.person("ANN", "Ann")
    world.entry("t1", "x #acme/web/design #approved", 60)
    world.hub.sync_once()
    before = world.hub.projector.checksums()
    with world.hub.store.db.transaction(commit=True) as c:  # the per-field audit of old
        # an older synchub made no views over it (CASCADE: the read side's, on PostgreSQL)
        c.execute(
            "DROP TABLE p_audit"
            + (" CASCADE" if world.hub.store.db.dialect.name == "postgresql" else "")
        )
        c.execute(
            "CREATE TABLE p_audit (position INTEGER, seq INTEGER, canonical_id TEXT,"
            " field TEXT, old TEXT, new TEXT, PRIMARY KEY (position, seq))"
        )
    calls: list[tuple[int, int]] = []
    projector = Projector(world.hub.store, progress=lambda done, total: calls.append((done, total)))
    assert projector.upgraded == ["p_audit"]
    head = world.hub.store.head()
    assert calls and calls[-1] == (head, head)  # the rebuild reported its progress
    assert projector.checksums() == before
    assert Projector(world.hub.store).upgraded == []
    assert queries.history(world.hub.store, "TimeEntry/t1")


def test_connector_failures_are_recorded_without_secrets(tmp_path: Path) -> None:
    w = World(tmp_path)
    try:
        secret_options = ConnectorSettings(
            type="memory", password="s3cr3t-pw", accounts={"ann": "tok-123456"}
        )
        w.hub.settings = w.hub.settings.model_copy(
            update={"connectors": {"tracker": secret_options}}
        )
        w.tracker.fail_next_read(1, reason="login as admin:s3cr3t-pw refused (token tok-123456)")
        report = w.hub.sync_once()
        assert (
            report.errors
            and "s3cr3t-pw" not in report.errors[0]
            and "tok-123456" not in report.errors[0]
        )
        assert "***" in report.errors[0]
        status = queries.status(w.hub.store, w.hub.projector, ["tracker"])
        error = status["connectors"]["tracker"]["last_error"]
        assert "refused" in error and "s3cr3t" not in error
        raw = b"".join(e.payload for e in w.hub.store.read_all())
        assert b"s3cr3t-pw" not in raw and b"tok-123456" not in raw
    finally:
        w.hub.close()


def test_sink_failures_are_recorded_without_secrets(tmp_path: Path) -> None:
    w = World(tmp_path, max_attempts=1)
    try:
        secret = ConnectorSettings(type="memory", url="http://sync:hunter2secret@127.0.0.1:9/x")
        w.hub.settings = w.hub.settings.model_copy(update={"connectors": {"erp": secret}})
        w.person("ANN", "Ann")
        w.entry("t1", "x #acme/web/design #approved", 60)
        w.erp.fail_next(1, reason="ConnectError: http://sync:hunter2secret@127.0.0.1:9/x refused")
        w.hub.sync_once()
        (x,) = w.exceptions()
        assert x["kind"] == "write" and "refused" in x["message"]
        assert "hunter2secret" not in json.dumps(x) and "sync:***@" in x["message"]
        raw = b"".join(e.payload for e in w.hub.store.read_all())
        assert b"hunter2secret" not in raw
    finally:
        w.hub.close()


def test_a_value_that_returns_to_an_earlier_state_is_written_again(world: World) -> None:
    world.person("ANN", "Ann")
    for minutes in (60, 90, 60):
        world.entry("t1", "x #acme/web/design #approved", minutes)
        world.hub.sync_once()
        (fields,) = world.erp.records.values()
        assert fields["hours"] == minutes / 60
    keys = [d.idempotency_key for _k, d in world.erp.applied.values()]
    assert len(keys) == len(set(keys)) == 3


def test_require_refuses_with_an_exception_and_flags_the_source_record(tmp_path: Path) -> None:
    mapping = json.loads(json.dumps(MAPPING))
    mapping["targets"][0]["require"] = {
        "the duration is positive": "minutes | gt 0",
        "the date is not in the future": "date | not_future",
    }
    mapping["targets"][0]["feedback"] = {
        "system": "tracker",
        "object": "entries",
        "tag": "sync-error",
    }
    w = World(tmp_path, mapping)
    tracker_sink = w.tracker_sink
    try:
        w.person("ANN", "Ann")
        w.entry("ok", "x #acme/web/design #approved", 30)
        w.entry("zero", "x #acme/web/design #approved", 0)
        w.hub.sync_once()
        assert [f["hours"] for f in w.erp.records.values()] == [0.5]
        (x,) = w.exceptions()
        assert x["kind"] == "plan" and "not satisfied: the duration is positive" in x["message"]
        (flag,) = [d for _k, d in tracker_sink.applied.values()]
        assert (flag.target_key, dict(flag.fields)) == ("zero", {"add_tags": ["sync-error"]})
        # the consultant fixes the entry: it is posted, the flag removed, the exception resolved
        w.entry("zero", "x #acme/web/design #approved", 45)
        w.hub.sync_once()
        assert sorted(f["hours"] for f in w.erp.records.values()) == [0.5, 0.75]
        last = list(tracker_sink.applied.values())[-1][1]
        assert dict(last.fields) == {"remove_tags": ["sync-error"]}
        assert w.exceptions() == []
    finally:
        w.hub.close()


def test_a_record_that_cannot_be_mapped_is_flagged_too_and_unflagged_once_fixed(
    tmp_path: Path,
) -> None:
    mapping = json.loads(json.dumps(MAPPING))
    mapping["targets"][0]["feedback"] = {
        "system": "tracker",
        "object": "entries",
        "tag": "sync-error",
    }
    w = World(tmp_path, mapping)
    try:
        w.person("ANN", "Ann")
        w.entry("bad", "x #acme//design #approved", 30)  # malformed path tag
        w.hub.sync_once()
        (x,) = w.exceptions()
        assert x["kind"] == "mapping"
        (shown,) = queries.exception(w.hub.store, x["id"])["flags"]  # found by the record key
        assert (shown["key"], shown["flagged"], shown["status"]) == ("bad", True, "applied")
        (flag,) = [d for _k, d in w.tracker_sink.applied.values()]
        assert (flag.target_key, dict(flag.fields)) == ("bad", {"add_tags": ["sync-error"]})
        w.hub.sync_once()  # flagged once, not again
        assert len(w.tracker_sink.applied) == 1
        w.entry("bad", "x #acme/web/design #approved", 30)  # fixed by the consultant
        w.hub.sync_once()
        assert w.exceptions() == []
        assert [f["hours"] for f in w.erp.records.values()] == [0.5]
        last = list(w.tracker_sink.applied.values())[-1][1]
        assert dict(last.fields) == {"remove_tags": ["sync-error"]}
    finally:
        w.hub.close()


SHORTENED = "the description was shortened to fit: its free text was cut"


def test_exceptions_show_tells_how_the_flag_of_a_refused_entry_was_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sink may apply a flag only by changing more than the tag (TimeTagger shortens a
    description that the tag would push past its limit) and say so in the applied outcome's
    reason: the WriteAttempted event keeps it, and `exceptions show` of the refusal the flag
    is for shows the flag with that note, so the operator knows the consultant's text was cut.
    """
    mapping = json.loads(json.dumps(MAPPING))
    mapping["targets"][0]["require"] = {"the duration is positive": "minutes | gt 0"}
    mapping["targets"][0]["feedback"] = {
        "system": "tracker",
        "object": "entries",
        "tag": "sync-error",
    }
    w = World(tmp_path, mapping)
    plain = w.tracker_sink.apply

    def noting(deltas: Any) -> list[Any]:
        return [
            replace(o, reason=SHORTENED) if o.status == "applied" and "add_tags" in d.fields else o
            for d, o in zip(deltas, plain(deltas), strict=True)
        ]

    monkeypatch.setattr(w.tracker_sink, "apply", noting)
    try:
        w.person("ANN", "Ann")
        w.entry("zero", "x #acme/web/design #approved", 0)
        w.hub.sync_once()
        (x,) = w.exceptions()
        assert x["kind"] == "plan"
        stream = "outbound/tracker/entries/TimeEntry/zero"
        attempt = w.hub.store.decode(w.hub.store.last(stream))  # type: ignore[arg-type]
        assert attempt["status"] == "applied" and attempt["reason"] == SHORTENED  # type: ignore[index]
        shown = queries.exception(w.hub.store, x["id"])
        assert shown["flags"] == [
            {
                "target": "tracker/entries",
                "key": "zero",
                "tag": "sync-error",
                "flagged": True,
                "status": "applied",
                "note": SHORTENED,
            }
        ]
        w.entry("zero", "x #acme/web/design #approved", 45)  # fixed: unflagged, resolved
        w.hub.sync_once()
        assert w.exceptions() == []
        (unflag,) = queries.exception(w.hub.store, x["id"])["flags"]
        assert (unflag["flagged"], unflag["status"], unflag["note"]) == (False, "applied", None)
        # a flag the source refuses: shown failed, with the refusal
        w.tracker_sink.reject_when(lambda d: "locked by its owner")
        w.entry("bad", "x #acme/web/design #approved", 0)
        w.hub.sync_once()
        by_kind = {x["kind"]: x for x in w.exceptions()}
        assert set(by_kind) == {"plan", "write"}  # the refusal, and the flag's own
        (refused,) = queries.exception(w.hub.store, by_kind["plan"]["id"])["flags"]
        assert refused["status"] == "failed" and "locked by its owner" in refused["note"]
    finally:
        w.hub.close()


def _flagging(mapping_id: str) -> dict[str, Any]:
    mapping = json.loads(json.dumps(MAPPING))
    mapping["sources"][0]["id"] = mapping_id
    mapping["targets"][0]["feedback"] = {
        "system": "tracker",
        "object": "entries",
        "tag": "sync-error",
    }
    return mapping


def test_an_unmappable_record_is_flagged_under_the_id_its_rule_gives_and_unflagged_once_fixed(
    tmp_path: Path,
) -> None:
    w = World(tmp_path, _flagging("te-{$key}"))  # the natural id is not the source key
    try:
        w.person("ANN", "Ann")
        w.entry("bad", "x #acme//design #approved", 30)  # malformed path tag; the id maps
        w.hub.sync_once()
        (flag,) = [d for _k, d in w.tracker_sink.applied.values()]
        assert flag.canonical_id == "TimeEntry/te-bad"
        assert (flag.target_key, dict(flag.fields)) == ("bad", {"add_tags": ["sync-error"]})
        w.entry("bad", "x #acme/web/design #approved", 30)
        w.hub.sync_once()
        assert w.exceptions() == []
        assert w.state("TimeEntry/te-bad")["fields"]["minutes"] == 30
        unflag = list(w.tracker_sink.applied.values())[-1][1]
        assert unflag.canonical_id == "TimeEntry/te-bad"
        assert dict(unflag.fields) == {"remove_tags": ["sync-error"]}
    finally:
        w.hub.close()


def test_a_record_whose_id_did_not_map_is_unflagged_once_it_maps_under_its_own_id(
    tmp_path: Path,
) -> None:
    w = World(tmp_path, _flagging(r"text | regex 'ref:(\d+)'"))  # the id is in the text
    try:
        w.person("ANN", "Ann")
        w.entry("bad", "x #acme/web/design #approved", 30)  # no ref: the id cannot be built
        w.hub.sync_once()
        (x,) = w.exceptions()
        assert x["kind"] == "mapping" and x["field"] == "id"
        (flag,) = [d for _k, d in w.tracker_sink.applied.values()]
        assert (flag.canonical_id, flag.target_key) == ("TimeEntry/bad", "bad")
        w.entry("bad", "x ref:42 #acme/web/design #approved", 30)
        w.hub.sync_once()
        assert w.exceptions() == []
        assert w.state("TimeEntry/42")["fields"]["minutes"] == 30
        unflag = list(w.tracker_sink.applied.values())[-1][1]
        assert (unflag.canonical_id, unflag.target_key) == ("TimeEntry/bad", "bad")
        assert dict(unflag.fields) == {"remove_tags": ["sync-error"]}
        w.hub.sync_once()  # removed once, not again
        assert len(w.tracker_sink.applied) == 2
    finally:
        w.hub.close()


def test_a_sink_answering_out_of_order_is_not_recorded_against_the_wrong_records(
    tmp_path: Path,
) -> None:
    w = World(tmp_path, max_attempts=1)  # the first answer decides
    try:
        apply = w.erp.apply
        w.erp.apply = lambda deltas: list(reversed(apply(deltas)))  # type: ignore[method-assign]
        w.person("ANN", "Ann")
        w.entry("t1", "x #acme/web/design #approved", 60)
        w.entry("t2", "y #acme/web/design #approved", 90)
        w.hub.sync_once()
        with w.hub.store.db.transaction(commit=False) as c:
            c.execute("SELECT DISTINCT status FROM p_outbound WHERE target='erp'")
            assert [r[0] for r in c.fetchall()] == ["failed"]
        xs = w.exceptions()
        assert len(xs) == 2 and all("not those of its deltas" in x["message"] for x in xs)
    finally:
        w.hub.close()


def test_a_dry_run_lists_the_target_writes_a_candidate_would_make(world: World) -> None:
    from hub.mapping import Mapping

    world.person("ANN", "Ann")
    world.entry("t1", "x #acme/web/design #approved", 60)
    world.entry("t2", "y #acme/web/design #approved", 155)
    world.entry("t3", "z #acme/web/design", 30)  # not approved: in neither
    world.hub.sync_once()
    before = world.hub.projector.checksums()
    v2 = json.loads(json.dumps(MAPPING))
    v2["targets"][0]["require"] = {"at least 100 minutes": "minutes | gt 100"}
    v2["targets"][0]["fields"]["hours"] = "minutes | div 60 | round 1"
    preview = world.hub.projector.dry_run(Mapping.from_dict(v2, version=2))
    assert preview.differences == []  # an outbound-only change
    t1, t2 = preview.writes
    assert (t1["canonical_id"], t1["op"], t1["fields"]) == ("TimeEntry/t1", "refused", {})
    assert "not satisfied: at least 100 minutes" in t1["reason"]
    # the employee's key is looked up through the links on both sides: only hours differ
    assert (t2["canonical_id"], t2["op"]) == ("TimeEntry/t2", "update")
    assert t2["fields"] == {"hours": [2.58, 2.6]}
    assert world.hub.projector.checksums() == before


def test_a_source_that_fails_unexpectedly_does_not_stop_the_others(world: World) -> None:
    def broken(checkpoint: Any, batch_size: int) -> Any:
        raise AttributeError("'str' object has no attribute 'tzinfo'")

    world.tracker.read = broken  # type: ignore[method-assign]
    world.person("ANN", "Ann")
    report = world.hub.sync_once()
    (error,) = report.errors
    assert error.startswith("tracker: AttributeError: 'str' object has no attribute 'tzinfo'")
    assert "a defect of connector tracker's source" in error
    assert world.state("Person/ANN")["exists"]  # the ERP connector was still read
    status = queries.status(world.hub.store, world.hub.projector, ["tracker", "erp"])
    assert "AttributeError" in status["connectors"]["tracker"]["last_error"]


def test_writes_attempted_outside_a_pass_go_in_batches_of_batch_size(tmp_path: Path) -> None:
    """`Executor.attempt` (what `synchub worker outbound` calls with up to 500 writes of a
    Kafka batch) sends `outbound.batch_size` at a time, as a pass does."""
    w = World(tmp_path, batch_size=4, rate_limit_per_s=1000)
    try:
        w.person("ANN", "Ann")
        for i in range(10):
            w.entry(f"t{i}", f"e{i} #acme/web/design #approved", 60)
        w.erp.fail_next(10)  # the pass's writes wait
        w.hub.sync_once(wait=False)
        pending = [r for r in w.hub.executor.active() if r.target == "erp"]
        assert len(pending) == 10 and not w.erp.records
        sizes: list[int] = []
        apply = w.erp.apply

        def counted(deltas: Any) -> Any:
            sizes.append(len(deltas))
            return apply(deltas)

        w.erp.apply = counted  # type: ignore[method-assign]
        statuses = w.hub.executor.attempt("erp", pending, ExecutorReport())
        assert sizes == [4, 4, 2] and statuses == ["applied"] * 10
        assert len(w.erp.records) == 10
    finally:
        w.hub.close()


def test_a_target_slower_than_the_rate_limit_is_not_also_throttled(tmp_path: Path) -> None:
    """The limit's tokens are taken before a batch is sent: a batch bigger than a second's
    quota would wait for all of it up front, then spend as long again writing."""
    w = World(tmp_path, rate_limit_per_s=5, batch_size=100)
    now = [0.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    w.hub.executor.limiters["erp"] = RateLimiter(5, clock=lambda: now[0], sleep=sleep)
    apply = w.erp.apply

    def slow(deltas: Any) -> Any:  # 4 writes a second: slower than the limit of 5
        now[0] += 0.25 * len(deltas)
        return apply(deltas)

    w.erp.apply = slow  # type: ignore[method-assign]
    try:
        w.person("ANN", "Ann")
        for i in range(15):
            w.entry(f"t{i}", f"e{i} #acme/web/design #approved", 60)
        w.hub.sync_once()
        assert len(w.erp.records) == 15
        assert sum(slept) == 0  # was 2 s: 15 tokens taken at once at 5/s, before writing
    finally:
        w.hub.close()
