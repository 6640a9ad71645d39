"""The demo's servers after the demo has exited: a state file of what `--keep-running` left up,
and stopping them by PID (only after checking each PID still is that server).

`<demo dir>/servers.json` holds the config path and, per server, its PID, port, URL, data
directory, command line and start time (Linux: /proc/PID/stat), written as soon as each server
answers, so a demo killed half-way still leaves a record of what it started.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = ["Server", "State", "alive", "identity"]


@dataclass(frozen=True)
class Server:
    """One running server as recorded in the state file."""

    name: str
    pid: int
    port: int
    url: str
    data: str
    log: str
    cmdline: list[str]
    started: int | None  # clock ticks after boot (Linux); with the PID, names one process

    @classmethod
    def of(cls, name: str, pid: int, port: int, url: str, data: Path, log: Path) -> Server:
        """The server with this PID as it runs now (its command line and start time)."""
        cmdline, started = identity(pid) or ([], None)
        return cls(name, pid, port, url, str(data), str(log), cmdline, started)

    def is_running(self) -> bool:
        """The PID is alive and still is this server (same command line and start time)."""
        now = identity(self.pid)
        if now is None:
            return False
        cmdline, started = now
        return cmdline == self.cmdline and (self.started is None or started == self.started)

    def describe(self) -> str:
        return f"{self.name} (PID {self.pid}, {self.url})"

    def stop(self, grace: float = 10.0) -> str:
        """SIGTERM, then SIGKILL after `grace` seconds; → what happened, in a sentence."""
        if not alive(self.pid):
            return f"{self.describe()} was not running any more"
        if not self.is_running():
            return f"PID {self.pid} is no longer {self.name} (another process now): left alone"
        os.kill(self.pid, signal.SIGTERM)
        if _gone(self.pid, grace):
            return f"stopped {self.describe()}"
        if self.is_running():
            os.kill(self.pid, signal.SIGKILL)
            _gone(self.pid, grace)
        return f"killed {self.describe()} (it did not stop within {grace:g} s of SIGTERM)"


class State:
    """`<demo dir>/servers.json`: the config and the servers a `--keep-running` demo left up."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def record(self, config: Path, server: Server) -> None:
        """Add (or replace) `server` in the file, written atomically."""
        servers = [s for s in self.servers() if s.name != server.name] + [server]
        body = {"config": str(config), "servers": [asdict(s) for s in servers]}
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(body, indent=2) + "\n")
        os.replace(tmp, self.path)

    def _read(self) -> dict[str, Any]:
        try:
            body = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return body if isinstance(body, dict) else {}  # a list: the old format's bare PIDs

    def config(self) -> Path | None:
        config = self._read().get("config")
        return Path(config) if isinstance(config, str) else None

    def servers(self) -> list[Server]:
        try:
            return [Server(**s) for s in self._read().get("servers", [])]
        except TypeError:  # written by another version: nothing we can safely signal
            return []

    def running(self) -> list[Server]:
        return [s for s in self.servers() if s.is_running()]

    def stop(self) -> list[str]:
        """Stop every recorded server (by PID, after checking it), forget them; → one line each."""
        said = [s.stop() for s in self.servers()]
        self.path.unlink(missing_ok=True)
        return said


def identity(pid: int) -> tuple[list[str], int | None] | None:
    """(command line, start time) of a live process, None if there is none (or a zombie).

    Linux reads /proc; elsewhere `ps` gives the command line and no start time."""
    proc = Path("/proc") / str(pid)
    if Path("/proc/self/stat").exists():
        try:
            stat = (proc / "stat").read_text()
            raw = (proc / "cmdline").read_bytes()
        except OSError:
            return None
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] in ("Z", "X"):  # exited, not reaped yet
            return None
        return [a.decode(errors="replace") for a in raw.split(b"\0")[:-1]], int(fields[19])
    done = subprocess.run(
        ["ps", "-p", str(pid), "-o", "stat=", "-o", "command="],
        capture_output=True,
        text=True,
        check=False,
    )
    state, _, command = done.stdout.strip().partition(" ")
    if done.returncode != 0 or not state or state.startswith("Z"):
        return None
    return command.split(), None


def alive(pid: int) -> bool:
    return identity(pid) is not None


def _gone(pid: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True
