"""The local TimeTagger server helper: install once, start, log in, stop by PID."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from connectors.timetagger.client import TimeTaggerClient
from connectors.timetagger.localserver import (
    VERSION,
    LocalServerError,
    TimeTaggerServer,
    ensure_installed,
)
from tests.connectors.timetagger.conftest import ROOT


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_ensure_installed_is_idempotent(timetagger_python: Path) -> None:
    stamp = timetagger_python.parent.parent / ".synchub-installed"
    before = stamp.stat().st_mtime_ns
    assert ensure_installed(ROOT) == timetagger_python
    assert stamp.stat().st_mtime_ns == before  # nothing was installed again
    assert stamp.read_text().strip() == f"timetagger=={VERSION}"


def test_a_single_user_server_logs_in_via_localhost_and_stops_by_pid(
    timetagger_python: Path, tmp_path: Path
) -> None:
    server = TimeTaggerServer(timetagger_python, tmp_path / "data")
    with pytest.raises(LocalServerError, match="call start"):
        _ = server.url
    with server:
        pid = server.pid
        assert pid is not None and server.url.startswith("http://127.0.0.1:")
        client = TimeTaggerClient(server.url, server.token())
        client.put_records([{"key": "a", "t1": 1, "t2": 2, "ds": "hi", "mt": 1}])
        assert [r["ds"] for r in client.updates(0).records] == ["hi"]
        client.close()
        with pytest.raises(LocalServerError, match="multi_user=True"):
            server.token("bob")
    assert server.pid is None and _gone(pid)
    assert list((tmp_path / "data" / "users").glob("defaultuser~*.db"))


def test_a_server_that_cannot_start_says_why(tmp_path: Path) -> None:
    server = TimeTaggerServer(Path(sys.executable), tmp_path)  # no timetagger in this venv
    with pytest.raises(LocalServerError, match="No module named timetagger"):
        server.start()
    assert server.pid is None


def test_a_server_not_ready_in_time_is_stopped(timetagger_python: Path, tmp_path: Path) -> None:
    pids: list[int | None] = []

    class Watched(TimeTaggerServer):
        def _wait_ready(self) -> None:
            pids.append(self.pid)
            super()._wait_ready()

    server = Watched(timetagger_python, tmp_path, start_timeout=0.2)
    with pytest.raises(LocalServerError, match=r"did not answer .*/status within 0.2 s"):
        server.start()
    (pid,) = pids
    assert pid is not None and _gone(pid) and server.pid is None
