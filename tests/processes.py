"""What the test harness's servers (tests/pg_cluster.py, kafka_broker.py, schema_registry.py)
share: a free loopback port, whether a process it started still runs, and stopping it."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def alive(pid: int) -> bool:
    """Whether `pid` runs (a child that exited is reaped, not counted)."""
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def stop(pid: int, grace: float) -> None:
    """SIGTERM (a clean shutdown), SIGKILL if `pid` still runs after `grace` seconds; returns
    once it is gone."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and alive(pid):
        time.sleep(0.1)
    if alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        while alive(pid):
            time.sleep(0.05)
