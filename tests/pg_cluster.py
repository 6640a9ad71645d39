"""A throw-away PostgreSQL 15 cluster for the tests: `initdb` from the machine's PostgreSQL 15
binaries, as the unprivileged `postgres` user (initdb refuses root), into a temp dir; a free
127.0.0.1 port; `fsync=off` for speed; `wal_level=logical`, ready for change capture. Each test
gets a fresh database copied from a template (`CREATE DATABASE … TEMPLATE`). Stopped by PID.

`SYNCHUB_TEST_PG_URL=postgresql://user:password@host:port/db` points the tests at an existing
server instead (nothing is started or stopped; databases are still created per test).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

from tests.processes import free_port

BIN = Path("/usr/lib/postgresql/15/bin")  # VERSION
USER = "postgres"
TEMPLATE = "synchub_template"
VERSION = 15
"""The PostgreSQL major version of the machine's binaries (BIN) and of docker-compose.yml."""
INITDB_ARGS = ("--encoding=UTF8", "--locale=C.UTF-8")
SERVER_SETTINGS = {
    "wal_level": "logical",  # ready for the log-based CDC connector
    "max_replication_slots": "8",
    "max_wal_senders": "8",
    "max_connections": "100",
}
"""The server's settings, here and in docker-compose.yml (a test checks they agree)."""
TEST_ONLY_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
"""Speed for throw-away test clusters only: never for a server whose data matters."""


def _as_postgres(*cmd: str) -> list[str]:
    """`cmd` run as the unprivileged user when we are root, as is otherwise."""
    if os.geteuid() == 0:
        return ["runuser", "-u", USER, "--", *cmd]
    return list(cmd)


class Cluster:
    """A running server: its admin URL, and (when we started it) its data dir and PID."""

    def __init__(self, url: str, data: Path | None = None, pid: int | None = None) -> None:
        self.url = url
        self.data = data
        self.pid = pid

    def url_for(self, database: str) -> str:
        parts = urlsplit(self.url)
        return urlunsplit(parts._replace(path=f"/{database}"))

    @contextmanager
    def database(self) -> Iterator[str]:
        """A fresh database copied from the template (created on first use), dropped after."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url, autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (TEMPLATE,))
            if exists.fetchone() is None:
                conn.execute(f'CREATE DATABASE "{TEMPLATE}"')
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}"')
        try:
            yield self.url_for(name)
        finally:
            with psycopg.connect(self.url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def restart(self, mode: str = "immediate") -> None:
        """Restart the server we started: `immediate` is a crash (no checkpoint, every
        connection cut), then recovery. Same port and settings."""
        assert self.data is not None, "only a cluster this harness started can be restarted"
        subprocess.run(
            _as_postgres(
                str(BIN / "pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.data.parent / "server.log"),  # not our pipe: run() would wait on it
                "-m",
                mode,
                "-w",
                "restart",
            ),
            check=True,
            capture_output=True,
            timeout=90,
        )
        self.pid = int((self.data / "postmaster.pid").read_text().split()[0])

    def stop(self) -> None:
        """Stop the server we started (fast shutdown, by PID) and remove its data dir."""
        if self.pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGINT)  # PostgreSQL's "fast" shutdown
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            os.kill(self.pid, signal.SIGKILL)
        if self.data is not None:
            shutil.rmtree(self.data.parent, ignore_errors=True)
        self.pid = None


def start(*, own: bool = False) -> Cluster:
    """The cluster for this test session: SYNCHUB_TEST_PG_URL's server, or a new one (always
    a new one when `own`: a test that restarts its server)."""
    given = os.environ.get("SYNCHUB_TEST_PG_URL")
    if given and not own:
        return Cluster(given)
    root = Path(tempfile.mkdtemp(prefix="synchub-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    if os.geteuid() == 0:
        account = pwd.getpwnam(USER)
        os.chown(root, account.pw_uid, account.pw_gid)
        os.chown(sock, account.pw_uid, account.pw_gid)
    subprocess.run(
        _as_postgres(
            str(BIN / "initdb"),
            "-D",
            str(data),
            "-U",
            USER,
            "--auth=trust",
            *INITDB_ARGS,
        ),
        check=True,
        capture_output=True,
        timeout=120,
    )
    port = free_port()
    options = f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={sock}"
    for name, value in {**SERVER_SETTINGS, **TEST_ONLY_SETTINGS}.items():
        options += f" -c {name}={value}"
    subprocess.run(
        _as_postgres(
            str(BIN / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(root / "server.log"),
            "-w",
            "-t",
            "60",
            "start",
        ),
        check=True,
        capture_output=True,
        timeout=90,
    )
    pid = int((data / "postmaster.pid").read_text().split()[0])
    return Cluster(f"postgresql://{USER}@127.0.0.1:{port}/postgres", data, pid)
