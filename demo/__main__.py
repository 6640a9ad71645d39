"""`make demo`: install and start Tryton and TimeTagger, seed a small consulting firm, run
synchub on SQLite, and print what happened. Leaves `.demo/synchub.yaml` for further commands.

Usage: python -m demo [--keep-running | --stop]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import signal
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

from connectors.timetagger.client import TimeTaggerClient
from connectors.timetagger.localserver import TimeTaggerServer
from connectors.timetagger.localserver import ensure_installed as install_timetagger
from connectors.tryton.client import TrytonClient
from connectors.tryton.localserver import ADMIN_PASSWORD, ADMIN_USER, TrytonServer, golden_database
from connectors.tryton.localserver import ensure_installed as install_tryton
from demo.seed import WEEK, seed_erp, seed_tracker
from hub import queries
from hub.config import load_settings
from hub.engine import Hub, PassReport

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / ".demo"
PIDS = DEMO / "servers.json"
out = Console()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--keep-running", action="store_true", help="leave the servers up (stop: --stop)"
    )
    parser.add_argument(
        "--stop", action="store_true", help="stop servers a previous --keep-running left up"
    )
    args = parser.parse_args()
    stop_leftovers()
    if args.stop:
        return 0
    with out.status("installing Tryton and TimeTagger into .services/ (first run only)…"):
        tryton_python = install_tryton(ROOT)
        tt_python = install_timetagger(ROOT)
    with out.status("baking the golden Tryton database (first run only, about a minute)…"):
        golden = golden_database(ROOT)
    if DEMO.exists():
        shutil.rmtree(DEMO)
    DEMO.mkdir()
    erp_server = TrytonServer(tryton_python, DEMO / "tryton")
    tt_server = TimeTaggerServer(tt_python, DEMO / "timetagger", multi_user=True)
    (DEMO / "tryton").mkdir()
    (DEMO / "timetagger").mkdir()
    try:
        with out.status("starting Tryton and TimeTagger on free 127.0.0.1 ports…"):
            erp_server.start()
            erp_server.add_database("erp", golden)
            tt_server.start()
        PIDS.write_text(json.dumps([s.process.pid for s in (erp_server, tt_server) if s.process]))
        out.print(f"Tryton    {erp_server.url}/erp   (admin / {ADMIN_PASSWORD})")
        out.print(f"TimeTagger {tt_server.url}")
        run_demo(erp_server, tt_server)
    finally:
        if not args.keep_running:
            tt_server.stop()
            erp_server.stop()
            PIDS.unlink(missing_ok=True)
            out.print("[dim]servers stopped (the event store and config stay in .demo/)[/]")
        else:
            out.print("[yellow]servers left running: `make demo-stop` stops them[/]")
    return 0


def run_demo(erp_server: TrytonServer, tt_server: TimeTaggerServer) -> None:
    erp = TrytonClient(erp_server.url, "erp", ADMIN_USER, ADMIN_PASSWORD)
    with out.status("seeding the ERP: consultants, customers, projects and tasks…"):
        seeded = seed_erp(erp)
    out.print(
        f"ERP seeded: {seeded['employees']} consultants, {seeded['projects']} projects, "
        f"{seeded['tasks']} tasks (2 tasks already closed)"
    )
    tokens = {person: tt_server.token(person) for person in ("alice", "bob", "carol")}
    config = write_config(erp_server, tt_server, tokens)
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


def write_config(erp: TrytonServer, tt: TimeTaggerServer, tokens: dict[str, str]) -> Path:
    """`.demo/synchub.yaml`: the demo's secrets are written into this local, git-ignored file."""
    shutil.copyfile(Path(__file__).with_name("mapping.yaml"), DEMO / "mapping.yaml")
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
    path = DEMO / "synchub.yaml"
    path.write_text("# written by `make demo`\n" + yaml.safe_dump(config, sort_keys=False))
    return path


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
    cfg = DEMO.relative_to(ROOT) / "synchub.yaml"
    out.print("\n[bold]Explore next[/] (the servers are stopped; the store stays):")
    out.print(f"  .venv/bin/synchub status --config {cfg}")
    out.print(f"  .venv/bin/synchub exceptions list --config {cfg}")
    out.print(
        f"  .venv/bin/synchub history TimeEntry <id> --config {cfg}   (ids: `synchub events tail --config {cfg}`)"
    )


def _code(line: dict[str, Any]) -> str:
    """The consultant's handle of a timesheet line read with `employee.party.code`."""
    employee = line.get("employee.") or {}
    return str((employee.get("party.") or {}).get("code"))


def stop_leftovers() -> None:
    """Stop servers a previous `--keep-running` left (by PID)."""
    if not PIDS.exists():
        return
    for pid in json.loads(PIDS.read_text()):
        try:
            os.kill(pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            continue
        for _ in range(50):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
    PIDS.unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main())
