"""`bench/workers.py --target tryton`: the firm's `erp` target is a real Tryton.

The server and its databases come from the tests' harness (tests/connectors/tryton/conftest.py:
the session's server on the golden ERP database, a fresh copy of it per database), each seeded
by demo/seed.py's `seed_erp` and mapped by demo/mapping.yaml, as in
tests/integration/test_workflows.py: employees, projects and tasks are captured from Tryton,
approved time entries become its timesheet lines (`employee` and `task` as Tryton ids, so the
sink reads the task's timesheet work per line). The tracker is a filedrop folder holding the
time entries as TimeTagger records (key, person, t1, duration, ds), so only one server runs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from connectors.tryton import TrytonConnector
from connectors.tryton.localserver import TrytonServer, ensure_installed, golden_database
from connectors.tryton.sink import split_marker
from demo.seed import CONSULTANTS, seed_erp
from hub.spi import Sink
from tests.connectors.tryton.conftest import ROOT, Session, TrytonDB

LINE = "timesheet.line"
TASKS = (
    "acme/website-relaunch/design",
    "acme/website-relaunch/build",
    "globex/data-platform/pipeline",
)
"""The open tasks demo.seed creates: every approved entry passes the mapping's `require`."""
PEOPLE = tuple(CONSULTANTS)
ENTRIES = "records_1.csv"


def session(tmp: Path) -> Session:
    """The tests' `tryton_session`, not started: the golden ERP database and a server."""
    return Session(TrytonServer(ensure_installed(ROOT), tmp / "tryton"), golden_database(ROOT))


def database(s: Session, name: str) -> TrytonDB:
    """The tests' `tryton_db` (a fresh copy of the golden database), seeded like the demo's."""
    s.server.add_database(name, s.golden)
    db = TrytonDB(s.server.url, name, s.server.dbdir / f"{name}.sqlite")
    client = db.client()
    try:
        seed_erp(client)
        # warm the server's caches for timesheet lines in this database: one line, deleted
        (employee,) = client.search("company.employee", [], limit=1)
        (work,) = client.search("timesheet.work", [], limit=1)
        values = {"employee": employee, "work": work, "duration": dt.timedelta(hours=1)}
        line = client.create(LINE, [{**values, "date": dt.date.today() - dt.timedelta(days=1)}])
        client.search_read(LINE, [("id", "in", line)], ["description"])
        client.delete(LINE, line)
    finally:
        client.close()
    return db


def firm_config(root: Path, db: TrytonDB, n: int) -> dict[str, Any]:
    """Write the firm's mapping and `n` entries (half approved) into `root`; its config."""
    today = dt.date.today()
    rows = ["key,person,t1,duration,ds"]
    for i in range(n):
        day = today - dt.timedelta(days=1 + i % 20)
        t1 = int(dt.datetime.combine(day, dt.time(9), dt.UTC).timestamp())
        text = f"work {i} #{TASKS[i // 2 % 3]} #billable" + (" #approved" if i % 2 == 0 else "")
        rows.append(f"r{i:06d},{PEOPLE[i % 3]},{t1},{900 * (1 + i % 32)},{text}")
    (root / "inbox" / ENTRIES).write_text("\n".join(rows) + "\n")
    mapping = yaml.safe_load((ROOT / "demo" / "mapping.yaml").read_text())
    mapping["targets"] = [t for t in mapping["targets"] if t["system"] == "erp"]
    (root / "mapping.yaml").write_text(yaml.safe_dump(mapping))
    fields = {"key": "string", "person": "string", "t1": "long", "duration": "long"}
    return {
        "store": {"path": "./synchub.db"},
        "mapping": "./mapping.yaml",
        "connectors": {
            "erp": {"type": "tryton", **db.options(), "lag": 60},
            "tracker": {
                "type": "filedrop",
                "directory": "./inbox",
                "objects": {
                    "records": {
                        "pattern": "records_*.csv",
                        "key": "key",
                        "fields": {**fields, "ds": "string"},
                    }
                },
            },
        },
        "ingest": {"reconcile_every": 0},
    }


def sink(db: TrytonDB, like: TrytonDB, scratch: Path) -> Sink:
    """The worker's sink class (TrytonConnector's) on `db`, logged in; `db` must hold the same
    Tryton ids as `like` (the deltas name employees and tasks by id)."""
    assert seeded(db) == seeded(like), "the baseline's database is not seeded like the firm's"
    out = TrytonConnector("erp", db.options(), scratch).sink()
    out.client.context  # log in now: not timed  # noqa: B018
    return out


def seeded(db: TrytonDB) -> list[tuple[str, int, Any]]:
    """Every employee's and work's Tryton id with its party and name."""
    c = db.client()
    try:
        rows = c.search_read("company.employee", [], ["party"])
        works = c.search_read("project.work", [], ["rec_name"])
    finally:
        c.close()
    return sorted(
        [("employee", r["id"], r["party"]) for r in rows]
        + [("work", r["id"], r["rec_name"]) for r in works]
    )


def started(db: TrytonDB) -> Callable[[], bool]:
    """Whether Tryton holds a timesheet line yet (one cheap search per call until it does)."""
    client = db.client()

    def check() -> bool:
        found = bool(client.search(LINE, [], limit=1))
        if found:
            client.close()
        return found

    return check


def lines(db: TrytonDB) -> tuple[int, int]:
    """(timesheet lines in Tryton, distinct synchub markers among them)."""
    c = db.client()
    try:
        rows = c.search_read(LINE, [], ["description"])
    finally:
        c.close()
    marks = {split_marker(r["description"])[1] for r in rows} - {None}
    return len(rows), len(marks)
