"""What the demo does once its servers run: seed the firm, run synchub twice, and show what
happened (captured facts, posted timesheet lines, open exceptions)."""

from __future__ import annotations

import datetime as dt
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

from connectors.timetagger.client import TimeTaggerClient
from connectors.timetagger.localserver import TimeTaggerServer
from connectors.tryton.client import TrytonClient
from connectors.tryton.localserver import ADMIN_PASSWORD, ADMIN_USER, TrytonServer
from demo.seed import WEEK, seed_erp, seed_tracker
from hub import queries
from hub.config import load_settings
from hub.engine import Hub, PassReport

out = Console()
MARK = "# written by `make demo`\n"


def run_demo(erp_server: TrytonServer, tt_server: TimeTaggerServer, config: Path) -> None:
    """Seed both systems, write `config`, sync (tags out), book a week, sync (time in)."""
    erp = TrytonClient(erp_server.url, "erp", ADMIN_USER, ADMIN_PASSWORD)
    with out.status("seeding the ERP: consultants, customers, projects and tasks…"):
        seeded = seed_erp(erp)
    out.print(
        f"ERP seeded: {seeded['employees']} consultants, {seeded['projects']} projects, "
        f"{seeded['tasks']} tasks (2 tasks already closed)"
    )
    tokens = {person: tt_server.token(person) for person in ("alice", "bob", "carol")}
    write_config(config, erp_server, tt_server, tokens)
    hub = Hub(load_settings(config))
    try:
        first = hub.sync_once()
        tags = first.executed.by_target.get("tracker", {}).get("applied", 0)
        out.print(
            f"pass 1: captured the ERP's projects and tasks → published {tags} "
            "#customer/project/task tags to TimeTagger (workflow 1)"
        )
        clients = {p: TimeTaggerClient(tt_server.url, t) for p, t in tokens.items()}
        booked = seed_tracker(clients, dt.date.today())
        out.print(f"consultants booked a week of time: {dict(booked)}")
        second = hub.sync_once()
        report(hub, erp, clients, [first, second])
    finally:
        hub.close()


def write_config(
    path: Path, erp: TrytonServer, tt: TimeTaggerServer, tokens: dict[str, str]
) -> None:
    """`<demo dir>/synchub.yaml`: the demo's secrets are written into this local, git-ignored
    file, with the mapping copied beside it."""
    shutil.copyfile(Path(__file__).with_name("mapping.yaml"), path.with_name("mapping.yaml"))
    config = {
        "store": {"path": "./synchub.db"},
        "mapping": "./mapping.yaml",
        "connectors": {
            "erp": {
                "type": "tryton",
                "url": erp.url,
                "database": "erp",
                "user": ADMIN_USER,
                "password": ADMIN_PASSWORD,
                "lag": 60,
            },
            "tracker": {"type": "timetagger", "url": tt.url, "accounts": tokens, "lag": 10},
        },
        "ingest": {"reconcile_every": 0},
        "outbound": {"max_wait": 10, "base_delay": 0.2},
        "poll_interval": 5,
    }
    path.write_text(MARK + yaml.safe_dump(config, sort_keys=False))


def report(
    hub: Hub, erp: TrytonClient, clients: dict[str, TimeTaggerClient], passes: list[PassReport]
) -> None:
    store = hub.store
    captured: Counter[str] = Counter()
    for e in store.read_all(types=["SourceChanged"]):
        _, system, obj, _key = e.stream.split("/", 3)
        captured[f"{system}/{obj}"] += 1
    t = Table(title="captured (facts in the event store)", header_style="bold")
    t.add_column("system/object")
    t.add_column("facts", justify="right")
    for name, n in sorted(captured.items()):
        t.add_row(name, str(n))
    out.print(t)

    lines = erp.search_read(
        "timesheet.line", [], ["employee.party.code", "date", "duration", "work.rec_name"]
    )
    t = Table(title=f"posted to Tryton: {len(lines)} timesheet lines", header_style="bold")
    for col in ("consultant", "date", "hours", "task"):
        t.add_column(col)
    for line in sorted(lines, key=lambda r: (_code(r), str(r["date"]))):
        hours = line["duration"].total_seconds() / 3600
        work = (line.get("work.") or {}).get("rec_name")
        t.add_row(_code(line), str(line["date"]), f"{hours:g}", str(work))
    out.print(t)

    rows = queries.exceptions(store)
    t = Table(title=f"exceptions: {len(rows)} open — what, and how to fix", header_style="bold")
    for col in ("id", "kind", "about", "what", "fix"):
        t.add_column(col, overflow="fold")
    for r in rows:
        about = r["canonical_id"] or "/".join(x for x in (r["system"], r["object"], r["key"]) if x)
        t.add_row(r["id"], r["kind"], about, r["message"], r["fix"])
    out.print(t)
    flagged = sum(
        "#sync-error" in rec.get("ds", "") for c in clients.values() for rec in c.updates(0).records
    )
    out.print(f"{flagged} entries carry #sync-error in TimeTagger, so their consultants see them")
    expected = Counter(e.expect.split(":")[0] for e in WEEK)
    out.print(f"expected from the seeded week: {dict(expected)}")


def _code(line: dict[str, Any]) -> str:
    """The consultant's handle of a timesheet line read with `employee.party.code`."""
    employee = line.get("employee.") or {}
    return str((employee.get("party.") or {}).get("code"))
