"""A real Tryton server on 127.0.0.1 for tests and demos: install, golden database, start, stop.

- `ensure_installed(root)` creates `root/.services/tryton-venv` and pip-installs Tryton from
  PyPI on first use (~30 s), then answers from a stamp file.
- `golden_database(root, kind)` builds once, and caches under `root/.services/tryton-golden/`,
  a SQLite database with the modules activated (`trytond-admin`, ~20-50 s) and the set-up of its
  script: `erp` (the default) is the ERP of `golden.py` (company, chart, fiscal year, payment
  term, service product); `crm` the separate CRM database of `golden_crm.py` (sale_opportunity;
  two legal entities, sales representatives, service-line products). The cache key covers the
  package list, the installed versions, the modules, the script and the fiscal year.
- `TrytonServer(python, dbdir, names)` serves the databases `<dbdir>/<name>.sqlite`;
  `add_database(name, template)` copies a template and loads it into the running server.

Trap handled: the `trytond` command keeps only the last `-d` option, and with `-d a b` its
start-up threads share one late-bound name, so some databases never load (every call then
fails with `KeyError: 'res.user'`). The server here runs `trytond.application` (which loads
`TRYTOND_DATABASE_NAMES` correctly) under werkzeug, wrapped so that
`POST /_synchub/load/<name>` loads one more database into the running server (its pool, ~1 s;
Tryton's own on-demand route `/<db>/r/` only sees databases listed when its 10-minute cache
of the database list was filled).

Concurrent callers (pytest-xdist workers) are serialised by a lock file. Servers bind
127.0.0.1 only and are stopped by PID, never by name.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import httpx

from connectors._kit.process import exclusive, free_port, stop_process, tail
from hub.spi import ConnectorError

__all__ = [
    "ADMIN_PASSWORD",
    "ADMIN_USER",
    "GOLDEN",
    "MODULES",
    "PACKAGES",
    "LocalServerError",
    "TrytonServer",
    "ensure_installed",
    "golden_database",
]

PACKAGES = (
    "trytond==8.2.1",
    "trytond[postgresql]==8.2.1",
    "trytond-project-invoice",
    "trytond-timesheet",
    "trytond-sale-opportunity",
    "trytond-product-price-list-dates",
    "trytond-project-plan",
    "trytond-party",
    "trytond-company",
    "proteus",
)
MODULES = (
    "project_invoice",
    "project_plan",
    "timesheet",
    "sale_opportunity",
    "product_price_list_dates",
)
"""The modules of the ERP database."""
GOLDEN: dict[str, tuple[tuple[str, ...], str]] = {
    "erp": (MODULES, "golden.py"),
    "crm": (("sale_opportunity",), "golden_crm.py"),
}
"""Golden database kind → (modules activated, set-up script next to this module)."""
ADMIN_USER = "admin"
ADMIN_PASSWORD = "admin"
"""The admin password of the local test databases (never a real system's)."""

_STAMP = ".synchub-installed"
_RUNNER = """
import logging, os, re, sys, threading, time
from trytond.application import app
from trytond.pool import Pool
from werkzeug.serving import run_simple

logging.getLogger("werkzeug").setLevel(logging.WARNING)
PARENT = os.getppid()

def watchdog():  # never outlive the process that started the server (unless detached)
    while os.getppid() == PARENT:
        time.sleep(1)
    os._exit(0)

LOAD = re.compile(r"/_synchub/load/([A-Za-z0-9_]+)\\Z")

def serve(environ, start_response):
    found = LOAD.match(environ.get("PATH_INFO", ""))
    if found and environ["REQUEST_METHOD"] == "POST":
        Pool(found.group(1)).init()
        start_response("204 No Content", [])
        return [b""]
    return app(environ, start_response)

if sys.argv[3:] != ["detached"]:
    threading.Thread(target=watchdog, daemon=True).start()
run_simple(sys.argv[1], int(sys.argv[2]), serve, threaded=True)
"""


class LocalServerError(ConnectorError):
    """Installing, building or starting the local Tryton failed; the message has the log tail."""


# -- install -------------------------------------------------------------------------------


def ensure_installed(root: Path) -> Path:
    """The python of `root/.services/tryton-venv`, installing Tryton into it on first use."""
    venv = root / ".services" / "tryton-venv"
    python = venv / "bin" / "python"
    wanted = "\n".join(PACKAGES)
    stamp = venv / _STAMP
    if stamp.exists() and stamp.read_text() == wanted and python.exists():
        return python
    with _lock(root):
        if stamp.exists() and stamp.read_text() == wanted and python.exists():
            return python
        shutil.rmtree(venv, ignore_errors=True)
        log = root / ".services" / "tryton-install.log"
        _run([sys.executable, "-m", "venv", str(venv)], log, "create the Tryton venv")
        _run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                *PACKAGES,
            ],
            log,
            "pip install Tryton",
        )
        stamp.write_text(wanted)
    return python


# -- golden database -----------------------------------------------------------------------


def golden_database(root: Path, kind: str = "erp") -> Path:
    """A ready SQLite golden database file of `kind` (see GOLDEN; built once per key; never
    modify the file)."""
    if kind not in GOLDEN:
        raise LocalServerError(f"no golden Tryton database {kind!r}; there are {sorted(GOLDEN)}")
    root = root.resolve()  # trytond resolves the config's database path from its own cwd
    python = ensure_installed(root)
    year = dt.date.today().year
    key = _golden_key(python, kind, year)
    target = root / ".services" / "tryton-golden" / key / f"{kind}.sqlite"
    if target.exists():
        return target
    with _lock(root):
        if target.exists():
            return target
        target.parent.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix="build-", dir=target.parent.parent))
        try:
            _build_golden(python, work, kind, year, work.parent / f"build-{kind}.log")
            _drop_journals(work / f"{kind}.sqlite")
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(work / f"{kind}.sqlite", target)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return target


def _golden_key(python: Path, kind: str, year: int) -> str:
    freeze = subprocess.run(
        [str(python), "-m", "pip", "freeze", "--disable-pip-version-check"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    versions = sorted(
        line
        for line in freeze.splitlines()
        if "tryton" in line.lower() or line.lower().startswith("proteus")
    )
    modules, script = GOLDEN[kind]
    body = (Path(__file__).with_name(script)).read_bytes()
    digest = hashlib.sha256(
        json.dumps([list(PACKAGES), list(modules), versions, year]).encode() + body
    ).hexdigest()
    return f"{year}-{digest[:16]}"


def _build_golden(python: Path, work: Path, kind: str, year: int, log: Path) -> None:
    modules, script = GOLDEN[kind]
    conf = _write_config(work / "trytond.conf", work, port=0)
    (work / f"{kind}.sqlite").touch()
    passfile = work / "admin.pass"
    passfile.write_text(ADMIN_PASSWORD + "\n")
    env = {**os.environ, "TRYTONPASSFILE": str(passfile)}
    admin = python.parent / "trytond-admin"
    _run(
        [
            str(admin),
            "-c",
            str(conf),
            "-d",
            kind,
            "--all",
            "-u",
            *modules,
            "--activate-dependencies",
            "--email",
            "admin@example.com",
        ],
        log,
        f"activate the Tryton modules of the {kind} database (trytond-admin)",
        env,
    )
    _run(
        [str(python), str(Path(__file__).with_name(script)), str(conf), kind, str(year)],
        log,
        f"set up the golden {kind} database ({script})",
        env,
    )


def _drop_journals(db: Path) -> None:
    """Remove SQLite -wal/-shm files next to `db` (the file alone must be complete)."""
    for suffix in ("-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            db.with_name(db.name + suffix).unlink()


# -- server --------------------------------------------------------------------------------


class TrytonServer:
    """`trytond.application` under werkzeug on 127.0.0.1, serving `<dbdir>/<name>.sqlite`.

    `names` are loaded at start; `add_database` adds more later. Use as a context manager or
    call `start()` / `stop()`. The server stops on its own when the process that started it
    exits, unless `detached=True` (the demo's `--keep-running`): then only its PID stops it.
    """

    def __init__(
        self,
        python: Path,
        dbdir: Path,
        names: Sequence[str] = (),
        port: int | None = None,
        *,
        detached: bool = False,
        ready_timeout: float = 120.0,
    ) -> None:
        self.python = python
        self.dbdir = dbdir
        self.names = list(names)
        self.port = port
        self.detached = detached
        self.ready_timeout = ready_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.log = dbdir / "trytond.log"

    @property
    def url(self) -> str:
        if self.port is None:
            raise LocalServerError("the Tryton server is not started")
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> TrytonServer:
        """Start and wait until JSON-RPC answers and every database in `names` is loaded."""
        if self.process is not None:
            return self
        self.dbdir.mkdir(parents=True, exist_ok=True)
        fixed = self.port
        for attempt in range(3):
            port = fixed or free_port()
            conf = _write_config(self.dbdir / "trytond.conf", self.dbdir, port)
            env = {
                **os.environ,
                "TRYTOND_CONFIG": str(conf),
                "TRYTOND_DATABASE_NAMES": ",".join(self.names),
            }
            with self.log.open("ab") as out:
                self.process = subprocess.Popen(
                    [str(self.python), "-c", _RUNNER, "127.0.0.1", str(port)]
                    + (["detached"] if self.detached else []),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=env,
                    start_new_session=True,
                )
            self.port = port
            try:
                self._wait_ready()
                return self
            except LocalServerError:
                self.stop()
                self.port = fixed
                if fixed is not None or attempt == 2:
                    raise
        return self

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def add_database(self, name: str, template: Path) -> None:
        """Copy `template` to `<dbdir>/<name>.sqlite` and load it into the running server."""
        if self.process is None:
            raise LocalServerError("start the Tryton server before adding databases")
        target = self.dbdir / f"{name}.sqlite"
        if target.exists():
            raise LocalServerError(f"database {name!r} already exists in {self.dbdir}")
        shutil.copyfile(template, target)
        response = httpx.post(f"{self.url}/_synchub/load/{name}", timeout=self.ready_timeout)
        if response.status_code != 204:
            raise LocalServerError(
                f"Tryton could not load database {name!r}: HTTP {response.status_code}"
                f"\n{tail(self.log)}"
            )
        self.names.append(name)

    def stop(self, grace: float = 5.0) -> None:
        """Terminate the server process (by PID; kill after `grace` seconds)."""
        process, self.process = self.process, None
        stop_process(process, grace)

    def __enter__(self) -> TrytonServer:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + self.ready_timeout
        body = {"id": 0, "method": "common.server.version", "params": []}
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise LocalServerError(
                    f"the Tryton server exited with code {self.process.returncode}"
                    f"\n{tail(self.log)}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.post(f"{self.url}/rpc/", json=body, timeout=2.0).status_code == 200:
                    return
            time.sleep(0.1)
        raise LocalServerError(
            f"the Tryton server did not answer within {self.ready_timeout:.0f}s\n{tail(self.log)}"
        )


# -- helpers -------------------------------------------------------------------------------


def _write_config(conf: Path, dbdir: Path, port: int) -> Path:
    """Write `conf`: SQLite databases in `dbdir`, listening on 127.0.0.1:`port`."""
    conf.write_text(
        f"[database]\nuri = sqlite://\npath = {dbdir}\n\n[web]\nlisten = 127.0.0.1:{port}\n"
    )
    return conf


def _lock(root: Path) -> contextlib.AbstractContextManager[None]:
    """An exclusive lock on `root/.services/tryton.lock` (one installer/builder at a time)."""
    return exclusive(root / ".services" / "tryton.lock")


def _run(command: Sequence[str], log: Path, what: str, env: dict[str, str] | None = None) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        out.write(f"$ {' '.join(command)}\n".encode())
        out.flush()
        code = subprocess.run(
            list(command), stdout=out, stderr=subprocess.STDOUT, env=env, check=False
        ).returncode
    if code != 0:
        raise LocalServerError(f"could not {what} (exit code {code}); log {log}:\n{tail(log)}")
