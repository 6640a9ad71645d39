"""The demo's record of the servers `--keep-running` left up: `--stop` signals a recorded PID
only while it still is that server. (That nothing below the demo imports it is an
import-linter contract, `demo-on-top`, in `make lint`.)"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from demo.servers import Server, State, alive


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield process
    finally:
        process.kill()
        process.wait()


def recorded(process: subprocess.Popen[bytes], tmp_path: Path) -> Server:
    return Server.of("Sleeper", process.pid, 1, "http://127.0.0.1:1", tmp_path, tmp_path / "log")


def test_a_recorded_server_is_stopped_by_its_pid_and_forgotten(
    sleeper: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    state = State(tmp_path / "servers.json")
    server = recorded(sleeper, tmp_path)
    state.record(tmp_path / "synchub.yaml", server)
    assert State(state.path).servers() == [server]
    assert State(state.path).config() == tmp_path / "synchub.yaml"
    assert server.cmdline[1:] == ["-c", "import time; time.sleep(60)"]
    assert [s.pid for s in state.running()] == [sleeper.pid]
    said = state.stop()
    assert said == [f"stopped Sleeper (PID {sleeper.pid}, http://127.0.0.1:1)"]
    assert sleeper.wait(5) is not None
    assert not state.path.exists()


def test_a_pid_that_is_now_another_process_is_left_alone(
    sleeper: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    state = State(tmp_path / "servers.json")
    server = recorded(sleeper, tmp_path)
    state.record(tmp_path / "synchub.yaml", replace(server, cmdline=["other"]))
    assert state.running() == []
    (said,) = state.stop()
    assert "no longer Sleeper" in said and "left alone" in said
    assert alive(sleeper.pid) and sleeper.poll() is None


def test_a_server_gone_already_is_reported_not_signalled(tmp_path: Path) -> None:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    server = recorded(process, tmp_path)
    process.wait()
    state = State(tmp_path / "servers.json")
    state.record(tmp_path / "synchub.yaml", server)
    assert state.stop() == [
        f"Sleeper (PID {process.pid}, http://127.0.0.1:1) was not running any more"
    ]


def test_an_unreadable_or_old_state_file_records_nothing(tmp_path: Path) -> None:
    state = State(tmp_path / "servers.json")
    for text in ("[123, 456]", "not json", '{"servers": [{"pid": 1}]}'):
        state.path.write_text(text)
        assert state.servers() == [] and state.stop() == []
        assert not state.path.exists()
