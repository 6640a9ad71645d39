"""A local TimeTagger server for tests and the demo: install it, start it, stop it, get a token.

`ensure_installed(root)` puts TimeTagger (from PyPI) into its own venv under
`root/.services/timetagger-venv` once; `TimeTaggerServer(python, datadir)` runs it bound to
127.0.0.1 on a free port and is stopped by its PID, never by name. It dies with the thread
that started it (tests leave nothing behind), unless `detached=True`: then it runs in a session
of its own and outlives its starter, which must record `pid` to stop it later (the demo's
`--keep-running`).

Users: a plain server has one user, `defaultuser`, reached through TimeTagger's localhost
login. `multi_user=True` turns on TimeTagger's reverse-proxy login trusting 127.0.0.1 instead,
so `token("anyone")` creates and logs in any user: a fresh user is a fresh, empty database,
which is how tests isolate from each other on one server. Only ever for local test servers.
"""

from __future__ import annotations

import base64
import ctypes
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from connectors._kit.process import free_port, stop_process
from hub.spi import ConnectorError

__all__ = [
    "VERSION",
    "LocalServerError",
    "TimeTaggerServer",
    "ensure_installed",
    "free_port",
]

VERSION = "26.1.3"
"""The TimeTagger release the connector is tested against."""

_STAMP = ".synchub-installed"
_PROXY_HEADER = "X-Remote-User"


class LocalServerError(ConnectorError):
    """A local TimeTagger could not be installed, started or logged into."""


def ensure_installed(root: Path, *, timeout: float = 600.0) -> Path:
    """The python of a venv holding timetagger==VERSION under `root/.services/`, made if needed.

    Idempotent and safe to call from parallel processes (a file lock serialises installs);
    a stamp file naming the version marks a complete install. Raises LocalServerError with
    pip's output when the install fails.
    """
    services = root / ".services"
    services.mkdir(parents=True, exist_ok=True)
    venv = services / "timetagger-venv"
    python = venv / "bin" / "python"
    stamp = venv / _STAMP
    wanted = f"timetagger=={VERSION}"
    with (services / "timetagger-install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if python.exists() and stamp.exists() and stamp.read_text().strip() == wanted:
            return python
        shutil.rmtree(venv, ignore_errors=True)
        _run([sys.executable, "-m", "venv", str(venv)], timeout, "create a venv")
        _run(
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", wanted],
            timeout,
            f"pip install {wanted} (needs PyPI)",
        )
        stamp.write_text(wanted + "\n")
    return python


def _run(command: list[str], timeout: float, what: str) -> None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise LocalServerError(f"cannot {what}: {e}") from e
    if done.returncode != 0:
        tail = (done.stdout + done.stderr).strip()[-2000:]
        raise LocalServerError(f"cannot {what} (exit {done.returncode}):\n{tail}")


class TimeTaggerServer:
    """One `python -m timetagger` process bound to 127.0.0.1, storing its data in `datadir`.

    Use as a context manager, or call `start()` and `stop()`. Its output goes to
    `datadir/server.log`; start errors quote its tail. `detached=True`: a new session and no
    death signal, so the server outlives the process that started it.
    """

    def __init__(
        self,
        python: Path,
        datadir: Path,
        port: int | None = None,
        *,
        multi_user: bool = False,
        detached: bool = False,
        start_timeout: float = 120.0,
    ) -> None:
        self.python = python
        self.datadir = datadir
        self.port = port
        self.multi_user = multi_user
        self.detached = detached
        self.start_timeout = start_timeout
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The base URL the connector's `url` option takes (the API is `<url>/api/v2/`)."""
        if self.port is None:
            raise LocalServerError("the TimeTagger server has no port yet: call start() first")
        return f"http://127.0.0.1:{self.port}/timetagger"

    @property
    def log(self) -> Path:
        return self.datadir / "server.log"

    def start(self) -> TimeTaggerServer:
        """Start the process and wait until `GET <url>/status` answers; returns self."""
        if self.process is not None:
            return self
        self.datadir.mkdir(parents=True, exist_ok=True)
        if self.port is None:
            self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("TIMETAGGER_")}
        env.update(
            TIMETAGGER_BIND=f"127.0.0.1:{self.port}",
            TIMETAGGER_DATADIR=str(self.datadir),
            TIMETAGGER_LOG_LEVEL="warning",
        )
        if self.multi_user:
            env.update(
                TIMETAGGER_PROXY_AUTH_ENABLED="true",
                TIMETAGGER_PROXY_AUTH_TRUSTED="127.0.0.1",
                TIMETAGGER_PROXY_AUTH_HEADER=_PROXY_HEADER,
            )
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [str(self.python), "-m", "timetagger"],
                env=env,
                cwd=self.datadir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=self.detached,
                preexec_fn=None if self.detached else _death_signal(),
            )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + self.start_timeout
        while True:
            code = self.process.poll()
            if code is not None:
                raise LocalServerError(
                    f"TimeTagger exited with code {code} while starting on port {self.port}; "
                    f"its output ends with:\n{self.log_tail()}"
                )
            try:
                if httpx.get(self.url + "/status", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise LocalServerError(
                    f"TimeTagger did not answer {self.url}/status within "
                    f"{self.start_timeout:g} s; its output ends with:\n{self.log_tail()}"
                )
            time.sleep(0.05)

    def log_tail(self, chars: int = 2000) -> str:
        """The last `chars` characters of the server's output."""
        try:
            return self.log.read_text("utf-8", errors="replace")[-chars:].strip() or "(nothing)"
        except OSError:
            return "(no output)"

    def stop(self, grace: float = 5.0) -> None:
        """Terminate the process by its PID; kill it if it is still alive after `grace` s."""
        process, self.process = self.process, None
        stop_process(process, grace)

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def token(self, user: str | None = None) -> str:
        """A long-lived API token for `user` (None: the single `defaultuser`).

        Logs in (localhost or proxy login) for a web token, then asks `GET apitoken` for it.
        Another user than `defaultuser` needs `multi_user=True`.
        """
        if user is not None and not self.multi_user:
            raise LocalServerError(
                f"user {user!r} needs a server started with multi_user=True; "
                "a single-user server only has 'defaultuser'"
            )
        api = self.url + "/api/v2/"
        if self.multi_user:
            method: dict[str, Any] = {"method": "proxy"}
            headers = {_PROXY_HEADER: user or "defaultuser"}
        else:
            method, headers = {"method": "localhost"}, {}
        body = base64.b64encode(json.dumps(method).encode())
        with httpx.Client(timeout=10.0) as http:
            answer = http.post(api + "bootstrap_authentication", content=body, headers=headers)
            webtoken = _token_of(answer, "log in")
            answer = http.get(api + "apitoken", headers={"authtoken": webtoken})
            return _token_of(answer, "get an API token")

    def __enter__(self) -> TimeTaggerServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _token_of(answer: httpx.Response, what: str) -> str:
    if answer.status_code != 200:
        raise LocalServerError(f"cannot {what} at TimeTagger: {answer.status_code} {answer.text}")
    token = answer.json().get("token")
    if not isinstance(token, str):
        raise LocalServerError(f"cannot {what} at TimeTagger: no token in {answer.text!r}")
    return token


def _death_signal() -> Callable[[], None] | None:
    """On Linux, a pre-exec hook making the child get SIGTERM when the thread that started it
    exits (PR_SET_PDEATHSIG), so a killed test run leaves no server behind. Everything is
    loaded here, in the parent: the hook itself only makes one system call."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def hook() -> None:
        prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG

    return hook
