"""One real TimeTagger server per test session; a fresh TimeTagger user (= an empty database)
per test, two for the tests of a connector over several people's accounts (`team`).

The server is installed on first use (`ensure_installed`, ~10 s once), started once (~4 s)
with TimeTagger's proxy login trusting 127.0.0.1 so any user name logs in, and stopped by PID
at session end. A new user costs ~70 ms, a new server ~4 s: users isolate the tests.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from connectors.timetagger import TimeTaggerConnector
from connectors.timetagger.client import TimeTaggerClient
from connectors.timetagger.localserver import TimeTaggerServer, ensure_installed
from hub.spi import Delta
from hub.types import DeltaOp

ROOT = Path(__file__).resolve().parents[3]
T0 = 1_767_225_600  # 2026-01-01T00:00:00Z: record times in the tests


@pytest.fixture(scope="session")
def timetagger_python() -> Path:
    """The python of the TimeTagger venv under .services/ (installed on first use)."""
    return ensure_installed(ROOT)


@pytest.fixture(scope="session")
def timetagger_server(
    timetagger_python: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TimeTaggerServer]:
    """The session's server; its data lives in RAM (/dev/shm) where there is one: TimeTagger
    syncs SQLite on every write, which is most of a test's time on a disk."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        datadir = Path(tempfile.mkdtemp(prefix="synchub-timetagger-", dir=shm))
    else:
        datadir = tmp_path_factory.mktemp("timetagger")
    server = TimeTaggerServer(timetagger_python, datadir, multi_user=True)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        if datadir.is_relative_to(shm):
            shutil.rmtree(datadir, ignore_errors=True)


@dataclass
class Account:
    """A fresh TimeTagger user on the session's server, with helpers to act as another client
    (a person in the TimeTagger app) writing directly through the API."""

    server: TimeTaggerServer
    user: str
    token: str
    _mt: dict[str, int] = field(default_factory=dict)
    _clients: list[TimeTaggerClient] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.server.url

    def options(self, **extra: Any) -> dict[str, Any]:
        return {"url": self.url, "token": self.token, **extra}

    def connector(self, **extra: Any) -> TimeTaggerConnector:
        return TimeTaggerConnector("tracker", self.options(**extra), Path("."))

    def client(self, **kwargs: Any) -> TimeTaggerClient:
        client = TimeTaggerClient(self.url, self.token, **kwargs)
        self._clients.append(client)
        return client

    def next_mt(self, key: str) -> int:
        """A client mtime newer than any this helper used for `key` (TimeTagger keeps the
        version with the larger mt, and refuses an mt older than its last reset)."""
        mt = max(math.ceil(time.time()), self._mt.get(key, 0) + 1)
        self._mt[key] = mt
        return mt

    def put(self, key: str, *, t1: int, t2: int, ds: str, mt: int | None = None) -> None:
        """Write one record as the TimeTagger app would."""
        item = {"key": key, "t1": t1, "t2": t2, "ds": ds, "mt": mt or self.next_mt(key)}
        result = self.api().put_records([item])
        assert result.accepted == [key], result

    def put_setting(self, key: str, value: Any) -> None:
        result = self.api().put_settings([{"key": key, "value": value, "mt": self.next_mt(key)}])
        assert result.accepted == [key], result

    def record(self, key: str) -> dict[str, Any] | None:
        """The record TimeTagger holds now for `key` (hidden ones too), or None."""
        found = [r for r in self.api().updates(0).records if r["key"] == key]
        return found[0] if found else None

    def setting(self, key: str) -> dict[str, Any] | None:
        found = [s for s in self.api().settings() if s["key"] == key]
        return found[0] if found else None

    def api(self) -> TimeTaggerClient:
        if not self._clients:
            self.client()
        return self._clients[0]

    def close(self) -> None:
        for client in self._clients:
            client.close()


@dataclass
class Team:
    """Several people's fresh accounts on one server, and a connector over all of them
    (`accounts: {person: token}`)."""

    members: dict[str, Account]

    def __getitem__(self, person: str) -> Account:
        return self.members[person]

    def options(self, **extra: Any) -> dict[str, Any]:
        tokens = {person: acc.token for person, acc in self.members.items()}
        url = next(iter(self.members.values())).url
        return {"url": url, "accounts": tokens, **extra}

    def connector(self, **extra: Any) -> TimeTaggerConnector:
        return TimeTaggerConnector("tracker", self.options(**extra), Path("."))


def new_account(server: TimeTaggerServer) -> Account:
    """A new TimeTagger user on `server` (close it after use)."""
    user = f"t{uuid.uuid4().hex[:12]}"
    return Account(server, user, server.token(user))


@pytest.fixture
def account(timetagger_server: TimeTaggerServer) -> Iterator[Account]:
    """A new, empty TimeTagger account on the session's server."""
    acc = new_account(timetagger_server)
    try:
        yield acc
    finally:
        acc.close()


@pytest.fixture
def team(account: Account, timetagger_server: TimeTaggerServer) -> Iterator[Team]:
    """Two people's new, empty accounts: "alice" (the first: tag metadata is read from it)
    and "bob"."""
    bob = new_account(timetagger_server)
    try:
        yield Team({"alice": account, "bob": bob})
    finally:
        bob.close()


def delta(
    op: DeltaOp,
    fields: dict[str, Any],
    *,
    target_key: str | None = None,
    key: str | None = None,
    obj: str = "records",
    canonical_id: str = "TimeEntry/1",
) -> Delta:
    """A delta to the `tracker` sink; its key defaults to one derived from its content."""
    return Delta(
        target="tracker",
        object=obj,
        canonical_id=canonical_id,
        target_key=target_key,
        op=op,
        fields=fields,
        idempotency_key=key
        or f"{op}:{canonical_id}:{json.dumps(fields, sort_keys=True, default=repr)}",
    )
