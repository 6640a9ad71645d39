"""What the test harness's servers (tests/pg_cluster.py, kafka_broker.py, schema_registry.py)
share: a free loopback port, and whether a process it started still runs."""

from __future__ import annotations

import contextlib
import os
import socket


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
