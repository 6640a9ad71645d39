"""Running a system's server locally for tests and the demo: ports, locks, stop by PID."""

from __future__ import annotations

import contextlib
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock

__all__ = ["exclusive", "free_port", "stop_process", "tail"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def stop_process(process: subprocess.Popen[bytes] | None, grace: float = 5.0) -> None:
    """Terminate `process` by its PID; kill it if it is still alive after `grace` seconds."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(grace)


@contextlib.contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """An exclusive lock on the file `path` (one installer or builder at a time, across
    processes such as pytest-xdist workers); waits as long as another process holds it.

    `filelock` takes an flock(2) on the file and leaves it in place, so it also excludes a
    process that locks the same file with a bare `fcntl.flock` (an older checkout sharing
    `.services/`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(path):
        yield


def tail(log: Path, lines: int = 30) -> str:
    """The last `lines` lines of a log file, for error messages."""
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) or "(empty log)"
    except OSError:
        return "(no log)"
