"""`python -m demo --keep-running` runs the firm's whole loop on real servers and leaves them up
after it exits: a deal won in the CRM is a project in each legal entity, time is posted, an
invoice in each currency is posted and the EUR one paid, and the CRM's billing notes say so;
synchub syncs against the servers with the config the demo wrote (idle: nothing to plan), and
`python -m demo --stop` stops them by PID. The demo starts its own servers (it is what is
tested), in a directory of the test's own so a demo left up in `.demo/` is not touched."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.tryton.client import TrytonClient
from connectors.tryton.localserver import ADMIN_PASSWORD, ADMIN_USER, golden_database
from demo.servers import Server, State
from tests.connectors.timetagger.conftest import timetagger_python  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "200"},
    )


def answers(server: Server) -> bool:
    """The server answers on its recorded port (Tryton's JSON-RPC, TimeTagger's status)."""
    try:
        if server.name == "Tryton":
            body = {"id": 0, "method": "common.server.version", "params": []}
            return httpx.post(f"{server.url}/rpc/", json=body, timeout=5).status_code == 200
        return httpx.get(f"{server.url}/status", timeout=5).status_code == 200
    except httpx.TransportError:
        return False


def died(server: Server) -> str:
    log = Path(server.log)
    tail = log.read_text(errors="replace")[-1500:] if log.exists() else "(no log)"
    return f"{server.describe()} is gone after the demo exited; its log ends:\n{tail}"


@pytest.mark.slow
def test_keep_running_leaves_the_servers_up_for_synchub_until_stop(
    tmp_path: Path,
    timetagger_python: Path,  # noqa: F811 (installed first, as for the other server tests)
) -> None:
    golden_database(ROOT)  # Tryton installed and its golden databases baked first (cached)
    golden_database(ROOT, "crm")
    demo = tmp_path / "demo"
    state = State(demo / "servers.json")
    servers: list[Server] = []
    try:
        started = run("-m", "demo", "--keep-running", "--dir", str(demo))
        assert started.returncode == 0, started.stdout + started.stderr
        servers = state.servers()
        assert {s.name for s in servers} == {"Tryton", "TimeTagger"}
        time.sleep(5)  # tied to the demo, both were gone a second or two after it exited
        for server in servers:
            assert server.is_running(), died(server)
            assert answers(server), f"{server.describe()} does not answer on port {server.port}"

        again = run("-m", "demo", "--keep-running", "--dir", str(demo))
        assert again.returncode == 0, again.stdout + again.stderr
        assert "already up" in again.stdout
        assert state.servers() == servers  # not a second pair

        config = state.config()
        assert config == demo / "synchub.yaml"
        synced = run("-m", "hub.cli", "sync", "--once", "--json", "--config", str(config))
        assert synced.returncode in (0, 2), synced.stdout + synced.stderr  # 1: errors
        report: dict[str, Any] = json.loads(synced.stdout)
        assert report["errors"] == [], report
        ingest = {i["connector"]: i["errors"] for i in report["ingest"]}
        assert ingest == {"crm": [], "erp": [], "tracker": []}
        assert report["planned"]["planned"] == 0, report  # the demo left nothing undone
        # exit 2: the exceptions the demo's invalid entries raised are (rightly) still open
        assert synced.returncode == (2 if report["open_exceptions"] else 0)

        (tryton,) = [s for s in servers if s.name == "Tryton"]
        loop_went_round(tryton.url, started.stdout)

        stopped = run("-m", "demo", "--stop", "--dir", str(demo))
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        for server in servers:
            assert f"stopped {server.describe()}" in stopped.stdout.replace("\n", " ")
            assert not server.is_running()
        assert not state.path.exists()
    finally:
        for server in servers or state.servers():  # whatever failed, nothing started stays up
            if server.is_running():
                os.kill(server.pid, signal.SIGKILL)


def loop_went_round(url: str, said: str) -> None:
    """What the demo did, read from the ERP and the CRM themselves (and what it said)."""
    erp = TrytonClient(url, "erp", ADMIN_USER, ADMIN_PASSWORD)
    crm = TrytonClient(url, "crm", ADMIN_USER, ADMIN_PASSWORD)
    projects = {
        p["name"]: p
        for p in erp.search_read(
            "project.work", [("type", "=", "project")], ["name", "company.rec_name", "list_price"]
        )
    }
    assert projects["Cloud migration"]["company."]["rec_name"] == "Acme Consulting"
    assert projects["Data platform EU"]["company."]["rec_name"] == "Acme Consulting EU GmbH"
    assert str(projects["Cloud migration"]["list_price"]) == "150.0000"  # the US rate card
    assert str(projects["Data platform EU"]["list_price"]) == "135.0000"  # the EU one
    assert "Hooli pilot" not in projects  # a lead: not provisioned
    invoices = erp.search_read("account.invoice", [], ["state", "currency.code"])
    assert sorted((i["currency."]["code"], i["state"]) for i in invoices) == [
        ("EUR", "paid"),
        ("USD", "posted"),
    ]
    lines = erp.search("timesheet.line", [])
    assert len(lines) >= 12, lines
    notes = {
        n["resource"]: n["description"]
        for n in crm.search_read(
            "ir.attachment", [("name", "=", "Billing (synchub)")], ["resource", "description"]
        )
    }
    for model in ("party.party", "sale.opportunity"):  # the customer's note and the deal's
        texts = sorted(t for r, t in notes.items() if r.startswith(f"{model},"))
        assert len(texts) == 2, notes  # Globex (EUR, paid) and Initech (USD, outstanding)
        assert "Currency: EUR" in texts[0] and "Outstanding: 0.00" in texts[0], texts
        assert "Currency: USD" in texts[1] and "Paid: 0.00" in texts[1], texts
    (hooli,) = crm.search("sale.opportunity", [("description", "=", "Hooli pilot")])
    assert f"sale.opportunity,{hooli}" not in notes  # a lead: nothing invoiced
    for step in ("1. first pass", "2. deals won", "3. a week of time", "4. invoices posted"):
        assert step in said, said
    assert "0 writes planned, 0 events appended" in said, said
    # the indicators: the refused entries' time waits, valued at their project's rate in the
    # project's legal entity (the US one: USD); both won deals were provisioned
    assert "7. what finance reads now" in said, said
    assert "Approved time not posted to erp/timesheet_lines: 5 entries" in said, said
    assert "worth 1485.00 USD" in said, said
    assert "Every won deal is provisioned." in said, said
    assert "the time-to-invoice report (`synchub report`):" in said, said
