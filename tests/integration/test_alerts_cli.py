"""Alerts across a SIGKILL, through the command line: `synchub sync --once` dies right after
the webhook received an alert and before recording it; the next pass sends the same alert
(same id) again and records it once. `synchub slo` shows the objective and its last alert.
The webhook's secret comes from the environment and never reaches output or events."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from typing import Any

import yaml

from tests.alert_receiver import receiver
from tests.integration.conftest import Firm

SECRET = "whsec-do-not-print-1234"


def run(firm: Firm, *args: str, crash_at: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SYNCHUB_CRASH_AT"}
    env["SYNCHUB_ALERT_SECRET"] = SECRET
    env["COLUMNS"] = "80"
    if crash_at:
        env["SYNCHUB_CRASH_AT"] = crash_at
    return subprocess.run(
        [sys.executable, "-m", "hub.cli", *args, "--config", str(firm.config)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_an_alert_is_delivered_once_across_a_sigkill(firm: Firm) -> None:
    with receiver(SECRET) as rec:
        config: dict[str, Any] = yaml.safe_load(firm.config.read_text())
        config["slos"] = [
            {"name": "quarantine", "kind": "exception_age", "within": "1s", "at_risk": "0s"}
        ]
        config["alerts"] = {
            "webhook": rec.url,
            "secret": "${SYNCHUB_ALERT_SECRET}",
            "base_delay": 0,
        }
        firm.config.write_text(yaml.safe_dump(config))
        (firm.root / "inbox" / "time_1.csv").write_text(
            "id,person,day,minutes,text\ne1,ann,2026-11-02,lots,x #acme/web/a #approved\n"
        )
        first = run(firm, "sync", "--once")
        assert first.returncode == 2, first.stdout + first.stderr  # an exception is open
        assert rec.received == []  # just opened: the objective is met
        time.sleep(1.5)
        killed = run(firm, "sync", "--once", crash_at="alerts.after_post")
        assert killed.returncode == -9, killed.stdout + killed.stderr
        assert rec.states() == [("quarantine", "breached")]
        again = run(firm, "sync", "--once")
        assert again.returncode == 2, again.stdout + again.stderr
        idle = run(firm, "sync", "--once")  # nothing changed: no new alert, nothing resent
        assert idle.returncode == 2, idle.stdout + idle.stderr
    assert len(rec.ids()) == 2 and len(set(rec.ids())) == 1, rec.ids()
    assert all(r["signed"] for r in rec.received)
    shown = run(firm, "slo", "--json")
    assert shown.returncode == 2, shown.stdout + shown.stderr  # breached
    assert shown.stdout.strip(), shown.stderr
    (state,) = json.loads(shown.stdout)
    assert state["state"] == "breached" and state["last_alert"]["delivery"] == "delivered"
    text = run(firm, "slo")
    assert "breached" in text.stdout and "last alert breached" in text.stdout
    with sqlite3.connect(firm.root / "synchub.db") as db:
        types = [
            r[0]
            for r in db.execute(
                "SELECT topic FROM stored_events WHERE originator_id = 'alert/quarantine'"
                " ORDER BY originator_version"
            )
        ]
        payloads = b"".join(r[0] for r in db.execute("SELECT state FROM stored_events"))
    assert types == ["AlertRaised", "AlertDelivered"]
    for proc in (first, killed, again, idle, shown, text):
        assert SECRET not in proc.stdout + proc.stderr
    assert SECRET.encode() not in payloads
