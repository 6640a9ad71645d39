"""`python -m demo --keep-running` leaves real Tryton and TimeTagger servers up after it exits;
synchub syncs against them with the config the demo wrote, and `python -m demo --stop` stops
them by PID. The demo starts its own pair of servers (it is what is tested), in a directory
of the test's own so a demo left up in the checkout's `.demo/` is not touched."""

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

from connectors.tryton.localserver import golden_database
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
    golden_database(ROOT)  # Tryton installed and its golden database baked first (cached)
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
        assert {i["connector"]: i["errors"] for i in report["ingest"]} == {"erp": [], "tracker": []}
        # exit 2: the exceptions the demo's invalid entries raised are (rightly) still open
        assert synced.returncode == (2 if report["open_exceptions"] else 0)

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
